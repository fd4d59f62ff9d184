import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { ControllerBuilder } from "./builder.js";
import { TerminalError } from "./controller.js";
import { Informer } from "./informer.js";
import { TestCollection, type TestObject } from "./listwatch-support.js";
import { generationChanged, labelsChanged } from "./predicates.js";

let seenNow: (() => string[]) | undefined;
const until = async (what: string, check: () => boolean) => {
  for (let i = 0; !check(); i++) {
    assert.ok(i < 20_000, `still waiting for ${what}${seenNow ? `: saw ${seenNow().join(",")}` : ""}`);
    await new Promise((r) => setImmediate(r));
  }
};

const object = (name: string, meta: Partial<TestObject["metadata"]> = {}, spec?: TestObject["spec"]) => ({
  metadata: { name, generation: 1, ...meta },
  ...(spec ? { spec } : {}),
});

/** A collection holding `initial`, and its informer, synced; the informer stops when the test ends. */
async function synced(t: TestContext, name: string, ...initial: string[]) {
  const objects = new TestCollection(name);
  for (const n of initial) objects.set(object(n));
  const inf = new Informer(objects);
  t.after(() => inf.stop());
  inf.start();
  await inf.waitForSync();
  return { objects, inf };
}

/** A reconciler that records the keys it saw, in order. */
function recorder(fail?: (key: string, n: number) => Error | undefined) {
  const seen: string[] = [];
  const reconcile = async (key: string) => {
    seen.push(key);
    const err = fail?.(key, seen.filter((k) => k === key).length);
    if (err) throw err;
  };
  seenNow = () => seen;
  return { seen, reconcile, count: (k: string) => seen.filter((s) => s === k).length };
}

describe("ControllerBuilder", () => {
  it("for(): reconciles an informer's objects by key, only for events the predicate passes", async (t) => {
    const { objects: pools, inf } = await synced(t, "pools", "old");
    const r = recorder();
    const c = new ControllerBuilder("test-for")
      .for(inf, { predicate: generationChanged })
      .complete(r.reconcile);
    pools.set(object("before-start"));
    assert.equal(c.queue.length, 0, "nothing is heard before start");
    c.start();
    await until("the objects known at start", () => r.count("old") === 1 && r.count("before-start") === 1);
    pools.set(object("old", { generation: 1 })); // a status write: same generation
    pools.set(object("marker"));
    await until("the marker", () => r.count("marker") === 1);
    assert.equal(r.count("old"), 1, "the status write was filtered out");
    pools.set(object("old", { generation: 2 }));
    pools.remove("marker");
    await until("the spec change and the delete", () => r.count("old") === 2 && r.count("marker") === 2);
    await c.stop();
  });

  it("watches(): maps another kind to keys, old and new object on update", async (t) => {
    const { objects: blocks, inf } = await synced(t, "blocks");
    const r = recorder();
    const c = new ControllerBuilder("test-watches", { workers: 2 })
      .watches(inf, (b) => [b.spec?.node as string, `pool/${b.spec?.pool}`], { predicate: labelsChanged })
      .complete({ reconcile: r.reconcile });
    c.start();
    blocks.set(object("b1", {}, { node: "n1", pool: "p" }));
    await until("node and pool of the new block", () => r.count("n1") === 1 && r.count("pool/p") === 1);
    blocks.set(object("b1", { labels: { moved: "yes" } }, { node: "n2", pool: "p" }));
    await until("both nodes of the moved block", () => r.count("n1") === 2 && r.count("n2") === 1);
    await c.stop();
  });

  it("delayMs: keys arrive after the delay, a burst folded into one reconcile", async (t) => {
    const { objects: blocks, inf } = await synced(t, "blocks");
    const r = recorder();
    const c = new ControllerBuilder("test-delay")
      .watches(inf, (b) => b.spec?.pool as string, { delayMs: 5 })
      .complete(r.reconcile);
    c.start();
    for (let i = 0; i < 10; i++) blocks.set(object(`b${i}`, {}, { pool: "p" }));
    assert.equal(r.count("p"), 0, "not at once");
    await until("the pool", () => r.count("p") === 1);
    await c.stop();
    assert.equal(r.count("p"), 1);
  });

  it("a TerminalError is not retried; the next change of the object brings it back", async (t) => {
    const { objects: things, inf } = await synced(t, "things");
    const r = recorder((key, n) =>
      key === "broken" && n === 1 ? new TerminalError("contradicts itself") : undefined,
    );
    const flaky = recorder((key, n) =>
      key === "flaky" && n === 1 ? new Error("apiserver busy") : undefined,
    );
    const terminal = new ControllerBuilder("test-terminal", { rateLimiter: () => 0 })
      .for(inf)
      .complete(r.reconcile);
    const retrying = new ControllerBuilder("test-retrying", { rateLimiter: () => 0 }).complete(
      flaky.reconcile,
    );
    terminal.start();
    retrying.start();
    things.set(object("broken"));
    things.set(object("marker"));
    await until("the marker", () => r.count("marker") === 1);
    assert.equal(r.count("broken"), 1, "not retried (a retry would have come before the marker)");
    assert.equal(terminal.queue.numRequeues("broken"), 0);
    things.set(object("broken", { generation: 2 }));
    await until("the changed object", () => r.count("broken") === 2);

    retrying.enqueue("flaky");
    await until("an ordinary error retried", () => flaky.count("flaky") === 2);
    await Promise.all([terminal.stop(), retrying.stop()]);
  });
});
