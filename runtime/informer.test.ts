import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { WatchEvent, WatchHandler } from "../datastore/store.js";
import { Informer, informersSynced } from "./informer.js";
import type { ListWatch } from "./listwatch.js";

interface Obj {
  metadata: { name: string; resourceVersion?: string };
  value: number;
}

/**
 * An in-memory collection with a bounded history, the way an apiserver behaves: a watch replays
 * what happened after its version, or says EXPIRED when that part of the history is gone.
 */
class FakeCollection implements ListWatch<Obj> {
  readonly description = "fake";
  private rv = 0;
  private readonly objects = new Map<string, Obj>();
  private history: Array<{ rv: number; ev: WatchEvent<Obj> }> = [];
  private oldest = 0;
  private watchers = new Set<WatchHandler<Obj>>();
  failLists = 0;
  listCalls = 0;

  set(name: string, value: number): void {
    const existed = this.objects.has(name);
    const obj = { metadata: { name, resourceVersion: String(++this.rv) }, value };
    this.objects.set(name, obj);
    this.emit({ type: existed ? "MODIFIED" : "ADDED", object: structuredClone(obj) });
  }

  remove(name: string): void {
    const obj = this.objects.get(name);
    if (!obj) return;
    this.objects.delete(name);
    this.emit({
      type: "DELETED",
      object: { ...obj, metadata: { name, resourceVersion: String(++this.rv) } },
    });
  }

  /** Forgets the history, as etcd compaction does. */
  compact(): void {
    this.history = [];
    this.oldest = this.rv;
  }

  /** Ends every watch as a broken connection would. */
  breakWatches(): void {
    for (const w of [...this.watchers]) {
      this.watchers.delete(w);
      w({ type: "CLOSED", error: new Error("connection reset") });
    }
  }

  /** Ends every watch as a compaction would. */
  expireWatches(): void {
    this.compact();
    for (const w of [...this.watchers]) {
      this.watchers.delete(w);
      w({ type: "EXPIRED", message: "too old" });
    }
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  private emit(ev: WatchEvent<Obj>): void {
    this.history.push({ rv: this.rv, ev });
    for (const w of this.watchers) w(ev);
  }

  async list() {
    this.listCalls++;
    if (this.failLists > 0) {
      this.failLists--;
      throw new Error("apiserver unavailable");
    }
    return {
      items: [...this.objects.values()].map((o) => structuredClone(o)),
      resourceVersion: String(this.rv),
    };
  }

  watch(from: string | undefined, handler: WatchHandler<Obj>) {
    const since = Number(from ?? this.rv);
    if (since < this.oldest) {
      queueMicrotask(() => handler({ type: "EXPIRED", message: "too old" }));
      return () => {};
    }
    for (const h of this.history) if (h.rv > since) handler(h.ev);
    this.watchers.add(handler);
    return () => {
      this.watchers.delete(handler);
    };
  }
}

function recorder() {
  const log: string[] = [];
  return {
    log,
    handlers: {
      add: (o: Obj) => log.push(`add ${o.metadata.name}=${o.value}`),
      update: (a: Obj, b: Obj) => log.push(`update ${b.metadata.name} ${a.value}->${b.value}`),
      delete: (o: Obj) => log.push(`delete ${o.metadata.name}`),
    },
  };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const values = (inf: Informer<Obj>) =>
  Object.fromEntries(
    inf
      .list()
      .map((o) => [o.metadata.name, o.value] as const)
      .sort(),
  );

describe("Informer", () => {
  it("lists, then follows adds, updates and deletes", async () => {
    const c = new FakeCollection();
    c.set("a", 1);
    const r = recorder();
    const inf = new Informer(c).on(r.handlers);
    inf.start();
    await inf.waitForSync();
    assert.ok(inf.hasSynced());
    c.set("b", 2);
    c.set("a", 3);
    c.remove("b");
    await until("events", () => r.log.length === 4);
    assert.deepEqual(r.log, ["add a=1", "add b=2", "update a 1->3", "delete b"]);
    assert.deepEqual(values(inf), { a: 3 });
    assert.equal(inf.get("a")?.value, 3);
    await inf.stop();
  });

  it("keeps an index current through adds, updates, deletes and a relist", async () => {
    const c = new FakeCollection();
    c.set("a", 1);
    c.set("b", 2);
    const inf = new Informer(c, { backoffInitialMs: 1 }).addIndex("parity", (o) =>
      o.value % 2 ? "odd" : "even",
    );
    const names = (v: string) =>
      inf
        .byIndex("parity", v)
        .map((o) => o.metadata.name)
        .sort();
    inf.start();
    await inf.waitForSync();
    assert.deepEqual(names("odd"), ["a"]);
    assert.deepEqual(names("even"), ["b"]);
    c.set("a", 4); // moves from odd to even
    c.set("c", 3);
    c.remove("b");
    await until("events", () => inf.get("c") !== undefined && inf.get("b") === undefined);
    assert.deepEqual(names("odd"), ["c"]);
    assert.deepEqual(names("even"), ["a"]);
    // Changes the watch never delivered, found by the relist after an expiry.
    c.breakWatches();
    c.set("c", 6);
    c.compact();
    await until("relisted", () => inf.get("c")?.value === 6);
    assert.deepEqual(names("odd"), []);
    assert.deepEqual(names("even"), ["a", "c"]);
    // An index added late covers what is already cached.
    inf.addIndex("all", () => "x");
    assert.equal(inf.byIndex("all", "x").length, 2);
    assert.throws(() => inf.byIndex("nope", "x"), /no index nope/);
    await inf.stop();
  });

  it("resumes a broken watch from the last version seen, without relisting and without losing events", async () => {
    const c = new FakeCollection();
    c.set("a", 1);
    const r = recorder();
    const inf = new Informer(c, { backoffInitialMs: 1, backoffMaxMs: 5 }).on(r.handlers);
    inf.start();
    await inf.waitForSync();
    c.breakWatches();
    c.set("a", 2); // happens while nobody watches
    c.set("b", 1);
    await until("resumed", () => r.log.length === 3);
    assert.deepEqual(r.log, ["add a=1", "update a 1->2", "add b=1"]);
    assert.equal(c.listCalls, 1);
    assert.ok(inf.stats.errors >= 1);
    await inf.stop();
  });

  it("relists when the watch expires and reports what changed meanwhile as add, update and delete", async () => {
    const c = new FakeCollection();
    c.set("keep", 1);
    c.set("change", 1);
    c.set("gone", 1);
    const r = recorder();
    const inf = new Informer(c, { backoffInitialMs: 1 }).on(r.handlers);
    inf.start();
    await inf.waitForSync();
    r.log.length = 0;
    c.breakWatches();
    // Changes while disconnected, then the history is compacted away.
    c.set("change", 2);
    c.remove("gone");
    c.set("new", 1);
    c.compact();
    await until("relisted", () => c.listCalls >= 2 && r.log.length >= 3);
    assert.deepEqual(r.log.sort(), ["add new=1", "delete gone", "update change 1->2"]);
    assert.deepEqual(values(inf), { change: 2, keep: 1, new: 1 });
    assert.ok(inf.stats.expired >= 1);
    // And it keeps following after the relist.
    c.set("keep", 5);
    await until("post-relist event", () => r.log.includes("update keep 1->5"));
    await inf.stop();
  });

  it("relists after an EXPIRED event on a live watch", async () => {
    const c = new FakeCollection();
    c.set("a", 1);
    const inf = new Informer(c, { backoffInitialMs: 1 });
    inf.start();
    await inf.waitForSync();
    await until("watching", () => c.watcherCount === 1);
    c.expireWatches();
    await until("relisted", () => c.listCalls === 2 && c.watcherCount === 1);
    c.set("a", 2);
    await until("update after relist", () => inf.get("a")?.value === 2);
    await inf.stop();
  });

  it("retries a failing list with backoff until it works", async () => {
    const c = new FakeCollection();
    c.set("a", 1);
    c.failLists = 3;
    const inf = new Informer(c, { backoffInitialMs: 1, backoffMaxMs: 4 });
    inf.start();
    await inf.waitForSync();
    assert.equal(c.listCalls, 4);
    assert.deepEqual(values(inf), { a: 1 });
    await inf.stop();
  });

  it("resyncs periodically with update(obj, obj) for every cached object", async () => {
    const c = new FakeCollection();
    c.set("a", 1);
    c.set("b", 1);
    const r = recorder();
    const inf = new Informer(c, { resyncMs: 10 }).on(r.handlers);
    inf.start();
    await until("two resyncs", () => inf.stats.resyncs >= 2);
    assert.ok(r.log.filter((l) => l === "update a 1->1").length >= 2);
    await inf.stop();
  });

  it("a handler added after sync hears about the cached objects; a throwing handler does not stop others", async () => {
    const c = new FakeCollection();
    c.set("a", 1);
    const inf = new Informer(c);
    let thrown = 0;
    inf.on({
      add: () => {
        thrown++;
        throw new Error("boom");
      },
    });
    inf.start();
    await inf.waitForSync();
    const r = recorder();
    inf.on(r.handlers);
    assert.deepEqual(r.log, ["add a=1"]);
    assert.equal(thrown, 1, "adding a handler must not replay to the others");
    c.set("b", 2);
    await until("b", () => r.log.length === 2);
    assert.equal(thrown, 2);
    await inf.stop();
  });

  it("informersSynced is a readiness check naming the informers that have not listed yet", async () => {
    const ok = new FakeCollection();
    const failing = new FakeCollection();
    failing.failLists = 1_000_000;
    const a = new Informer(ok);
    const b = new Informer({
      ...failing,
      description: "never",
      list: () => failing.list(),
      watch: failing.watch,
    });
    const check = informersSynced([a, b]);
    assert.equal(check(), "not synced: fake, never");
    a.start();
    await a.waitForSync();
    assert.equal(check(), "not synced: never");
    await a.stop();
    assert.equal(informersSynced([a])(), true);
  });

  it("delivers nothing after stop", async () => {
    const c = new FakeCollection();
    const r = recorder();
    const inf = new Informer(c).on(r.handlers);
    inf.start();
    await inf.waitForSync();
    await inf.stop();
    c.set("late", 1);
    await new Promise((res) => setTimeout(res, 10));
    assert.deepEqual(r.log, []);
    assert.equal(c.watcherCount, 0);
  });
});
