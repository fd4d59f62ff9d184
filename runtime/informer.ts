import type { WatchEvent } from "../datastore/index.js";
import { createLogger, jitteredBackoff, type Logger } from "../lib/index.js";
import type { ListWatch, MetaObject } from "./listwatch.js";
import { informerEvents, informerRestarts } from "./metrics.js";

export interface InformerHandlers<T> {
  add?(obj: T): void;
  /** Also called with old === new on a periodic resync. */
  update?(oldObj: T, newObj: T): void;
  /** The last state known; after a relist this may be older than the real final state. */
  delete?(obj: T): void;
}

export interface InformerOptions {
  /** Calls update(obj, obj) for every cached object this often (0: never, the default). */
  resyncMs?: number;
  /** Backoff after errors: full jitter between 0 and min(max, initial * 2^failures). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  logger?: Logger;
}

/** Cache key: `namespace/name` for namespaced objects, `name` for cluster-scoped ones. */
export function objectKey(obj: MetaObject): string {
  const m = obj.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name}` : (m.name ?? "");
}

/** A readiness check (lib/health.ts) that passes once every informer has listed, naming those that have not. */
export function informersSynced(informers: Array<Pick<Informer<MetaObject>, "hasSynced" | "lw">>) {
  return (): true | string => {
    const waiting = informers.filter((i) => !i.hasSynced()).map((i) => i.lw.description);
    return waiting.length === 0 ? true : `not synced: ${waiting.join(", ")}`;
  };
}

type WatchEnd =
  | { type: "EXPIRED"; message: string }
  | { type: "CLOSED"; error?: Error }
  | { type: "STOPPED" };

/**
 * Keeps a local copy of a collection: list, then watch from the list's version; a broken watch is
 * resumed from the last version seen (with backoff when it keeps failing); an expired one (410)
 * means a fresh list, diffed against the cache so handlers still see every add, update and delete.
 */
export class Informer<T extends MetaObject> {
  private readonly cache = new Map<string, T>();
  /** Secondary indexes: index name -> index value -> cache key -> object. */
  private readonly indexes = new Map<string, Index<T>>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly log: Logger;
  private synced = false;
  private syncWaiters: Array<() => void> = [];
  private running = false;
  private stopped = false;
  private lastResourceVersion: string | undefined;
  private stopWatch: (() => void) | undefined;
  private wake: (() => void) | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  /** Counters for tests and debugging. */
  readonly stats = { lists: 0, watches: 0, expired: 0, errors: 0, resyncs: 0 };

  constructor(
    readonly lw: ListWatch<T>,
    private readonly opts: InformerOptions = {},
  ) {
    this.log = opts.logger ?? createLogger(`informer/${lw.description}`);
  }

  on(handlers: InformerHandlers<T>): this {
    this.handlers.push(handlers);
    // A handler added late still hears about everything already known (it alone).
    if (this.synced) {
      for (const obj of this.cache.values()) {
        try {
          handlers.add?.(obj);
        } catch (err) {
          this.log.error("event handler failed", { event: "add", key: objectKey(obj), error: String(err) });
        }
      }
    }
    return this;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
    if (this.opts.resyncMs && this.opts.resyncMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), this.opts.resyncMs);
      this.resyncTimer.unref();
    }
  }

  /** Stops watching; the cache stays readable. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.stopWatch?.();
    this.wake?.();
    await this.loop;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  /**
   * Keeps the objects findable by a value of theirs (client-go's indexers): a reconciler that
   * wants one node's blocks reads them in O(that node's blocks), not O(every block) per call.
   */
  addIndex(name: string, of: (obj: T) => string | undefined): this {
    if (this.indexes.has(name)) return this;
    const index = { of, by: new Map<string, Map<string, T>>() };
    this.indexes.set(name, index);
    for (const [key, obj] of this.cache) indexAdd(index, key, obj);
    return this;
  }

  /** The cached objects whose index `name` has this value. */
  byIndex(name: string, value: string): T[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`informer ${this.lw.description}: no index ${name}`);
    return [...(index.by.get(value)?.values() ?? [])];
  }

  private put(key: string, obj: T, old: T | undefined): void {
    this.cache.set(key, obj);
    for (const index of this.indexes.values()) {
      if (old) indexDelete(index, key, old);
      indexAdd(index, key, obj);
    }
  }

  private drop(key: string, old: T): void {
    this.cache.delete(key);
    for (const index of this.indexes.values()) indexDelete(index, key, old);
  }

  keys(): string[] {
    return [...this.cache.keys()];
  }

  private fire(what: "add" | "delete", obj: T): void;
  private fire(what: "update", obj: T, newObj: T): void;
  private fire(what: keyof InformerHandlers<T>, obj: T, newObj?: T): void {
    informerEvents.inc({ informer: this.lw.description, event: what });
    for (const h of this.handlers) {
      try {
        if (what === "update") h.update?.(obj, newObj as T);
        else h[what]?.(obj);
      } catch (err) {
        this.log.error("event handler failed", { event: what, key: objectKey(obj), error: String(err) });
      }
    }
  }

  private resync(): void {
    if (!this.synced || this.stopped) return;
    this.stats.resyncs++;
    for (const obj of this.cache.values()) this.fire("update", obj, obj);
  }

  /** Waits, unless stop() comes first. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private backoff(failures: number): number {
    return jitteredBackoff(failures, this.opts.backoffInitialMs ?? 200, this.opts.backoffMaxMs ?? 30_000);
  }

  private async run(): Promise<void> {
    let failures = 0;
    let quickExpiries = 0;
    while (!this.stopped) {
      try {
        this.stats.lists++;
        const { items, resourceVersion } = await this.lw.list();
        if (this.stopped) break;
        this.replace(items);
        this.lastResourceVersion = resourceVersion;
        failures = 0;
      } catch (err) {
        this.stats.errors++;
        informerRestarts.inc({ informer: this.lw.description, reason: "list-error" });
        const delay = this.backoff(failures++);
        this.log.warn("list failed, retrying", { error: String(err), retryInMs: delay });
        await this.pause(delay);
        continue;
      }
      // Watch until the history we need is gone; then list again.
      while (!this.stopped) {
        const started = Date.now();
        let progressed = false;
        const end = await this.watchOnce(() => {
          progressed = true;
        });
        if (end.type === "STOPPED" || this.stopped) return;
        if (end.type === "EXPIRED") {
          this.stats.expired++;
          informerRestarts.inc({ informer: this.lw.description, reason: "expired" });
          this.log.info("watch expired, relisting", { message: end.message });
          // A list that is stale the moment it is watched must not turn into a tight loop.
          if (!progressed && Date.now() - started < 1000) await this.pause(this.backoff(quickExpiries++));
          else quickExpiries = 0;
          break;
        }
        // A watch that ends quietly after a while is the server's timeout: resume at once.
        // One that fails, or ends without doing anything, is retried with growing backoff.
        if (!end.error && (progressed || Date.now() - started > 1000)) {
          failures = 0;
          continue;
        }
        if (progressed) failures = 0;
        this.stats.errors++;
        informerRestarts.inc({ informer: this.lw.description, reason: "watch-error" });
        const delay = this.backoff(failures++);
        this.log.warn("watch broke, resuming", {
          error: end.error ? end.error.message : "closed",
          fromResourceVersion: this.lastResourceVersion,
          retryInMs: delay,
        });
        await this.pause(delay);
      }
    }
  }

  private watchOnce(onProgress: () => void): Promise<WatchEnd> {
    return new Promise((resolve) => {
      this.stats.watches++;
      this.wake = () => resolve({ type: "STOPPED" });
      this.stopWatch = this.lw.watch(this.lastResourceVersion, (ev: WatchEvent<T>) => {
        if (this.stopped) return;
        switch (ev.type) {
          case "EXPIRED":
          case "CLOSED":
            this.stopWatch = undefined;
            resolve(ev);
            return;
          case "BOOKMARK":
            this.lastResourceVersion = ev.resourceVersion;
            return;
          default:
            onProgress();
            this.apply(ev.type, ev.object);
        }
      });
    });
  }

  private apply(type: "ADDED" | "MODIFIED" | "DELETED", obj: T): void {
    const key = objectKey(obj);
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.lastResourceVersion = rv;
    const old = this.cache.get(key);
    if (type === "DELETED") {
      if (old) this.drop(key, old);
      this.fire("delete", obj);
      return;
    }
    this.put(key, obj, old);
    if (old) this.fire("update", old, obj);
    else this.fire("add", obj);
  }

  /** Takes a fresh list as the truth and tells handlers what changed since the cache was filled. */
  private replace(items: T[]): void {
    const fresh = new Map(items.map((o) => [objectKey(o), o]));
    for (const [key, old] of this.cache) {
      if (!fresh.has(key)) {
        this.drop(key, old);
        this.fire("delete", old);
      }
    }
    for (const [key, obj] of fresh) {
      const old = this.cache.get(key);
      this.put(key, obj, old);
      if (!old) this.fire("add", obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.fire("update", old, obj);
    }
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }
}

type Index<T> = { of: (obj: T) => string | undefined; by: Map<string, Map<string, T>> };

function indexAdd<T>(index: Index<T>, key: string, obj: T): void {
  const value = index.of(obj);
  if (value === undefined) return;
  let bucket = index.by.get(value);
  if (!bucket) {
    bucket = new Map();
    index.by.set(value, bucket);
  }
  bucket.set(key, obj);
}

function indexDelete<T>(index: Index<T>, key: string, obj: T): void {
  const value = index.of(obj);
  if (value === undefined) return;
  const bucket = index.by.get(value);
  if (!bucket) return;
  bucket.delete(key);
  if (bucket.size === 0) index.by.delete(value);
}
