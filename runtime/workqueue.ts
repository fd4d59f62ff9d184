import { exponentialBackoff } from "../lib/index.js";
import { queueDepth, queueRetries } from "./metrics.js";

export interface WorkQueueOptions {
  /** Name for metrics. */
  name?: string;
  /** Delay before the n-th retry (n from 1) of a failing key. Default: 10 ms * 2^(n-1), at most 60 s. */
  rateLimiter?: (failures: number) => number;
}

export const defaultRateLimiter = (failures: number) => exponentialBackoff(failures - 1, 10, 60_000);

/**
 * A queue of keys in client-go's shape: a key waits at most once however often it is added
 * (dirty set); a key being processed is never handed to a second worker, and if it is added
 * meanwhile it comes back after done(); failing keys come back after a per-key growing delay
 * until forget().
 */
export class WorkQueue<K = string> {
  private readonly queue: K[] = [];
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly failures = new Map<K, number>();
  /** Delayed adds: key -> when it is due and its timer; an earlier due time wins. */
  private readonly delayed = new Map<K, { due: number; timer: NodeJS.Timeout }>();
  private waiters: Array<(key: K | undefined) => void> = [];
  private shuttingDown = false;
  private drained: (() => void) | undefined;
  private readonly name: string;
  private readonly rateLimiter: (failures: number) => number;

  constructor(opts: WorkQueueOptions = {}) {
    this.name = opts.name ?? "default";
    this.rateLimiter = opts.rateLimiter ?? defaultRateLimiter;
  }

  get length(): number {
    return this.queue.length;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // done() puts it back
    this.push(key);
  }

  addAfter(key: K, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const due = Date.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.due <= due) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { due, timer });
  }

  /** Puts a failed key back after its own backoff, which grows with each failure until forget(). */
  addRateLimited(key: K): void {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    queueRetries.inc({ queue: this.name });
    this.addAfter(key, this.rateLimiter(n));
  }

  /** The key succeeded: its next failure starts from the shortest backoff again. */
  forget(key: K): void {
    this.failures.delete(key);
  }

  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key, or undefined once the queue is shut down and has nothing left to hand out. */
  get(): Promise<K | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The worker is finished with key (whatever the outcome). */
  done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) this.push(key);
    this.checkDrained();
  }

  /**
   * Stops accepting keys. With drain (the default) keys already waiting are still handed out and
   * this resolves when every one is done; without it they are dropped and this resolves when the
   * keys being processed are done. Delayed retries are dropped either way.
   */
  shutdown(drain = true): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    if (!drain) {
      for (const k of this.queue.splice(0)) this.dirty.delete(k);
      this.updateDepth();
    }
    const done = new Promise<void>((resolve) => {
      this.drained = resolve;
    });
    // With nothing queued, idle workers would wait forever: tell them it is over.
    if (this.queue.length === 0) for (const w of this.waiters.splice(0)) w(undefined);
    this.checkDrained();
    return done;
  }

  private take(key: K): K {
    this.processing.add(key);
    this.dirty.delete(key);
    this.updateDepth();
    return key;
  }

  private push(key: K): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter(this.take(key));
      return;
    }
    this.queue.push(key);
    this.updateDepth();
  }

  private checkDrained(): void {
    if (!this.shuttingDown || !this.drained) return;
    if (this.queue.length === 0) for (const w of this.waiters.splice(0)) w(undefined);
    if (this.queue.length === 0 && this.processing.size === 0) {
      const resolve = this.drained;
      this.drained = undefined;
      resolve();
    }
  }

  private updateDepth(): void {
    queueDepth.set({ queue: this.name }, this.queue.length);
  }
}
