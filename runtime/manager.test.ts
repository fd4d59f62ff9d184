import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HealthServer } from "./health.js";
import { Informer } from "./informer.js";
import { TestCollection } from "./listwatch-support.js";
import { Manager, type Runnable } from "./manager.js";

/** A part that records its start and stop, and what the cache held when it started. */
function part(name: string, log: string[], cache?: Informer<never>): Runnable {
  return {
    name,
    async start() {
      log.push(`${name}:start${cache ? ` synced=${cache.hasSynced()}` : ""}`);
      await new Promise((r) => setImmediate(r));
    },
    stop() {
      log.push(`${name}:stop`);
    },
  };
}

describe("Manager", () => {
  it("starts caches first, then parts in order; stops parts, then caches", async () => {
    const log: string[] = [];
    const pools = new TestCollection("pools");
    pools.set({ metadata: { name: "p" } });
    const inf = new Informer(pools) as unknown as Informer<never>;
    const stop = inf.stop.bind(inf);
    inf.stop = async () => {
      log.push("informer:stop");
      await stop();
    };
    const health = new HealthServer({ defaultMetrics: false });
    const m = new Manager({ health });
    m.addCache(inf)
      .add(part("first", log, inf))
      .add(part("second", log));
    m.add(part("everywhere", log), { leaderElected: false });
    assert.equal((await health.failing()).size, 0, "nothing due yet: ready");
    await m.start();
    assert.ok(m.isLeader(), "without leader election every part runs");
    assert.deepEqual(log, ["everywhere:start", "first:start synced=true", "second:start"]);
    assert.equal((await health.failing()).size, 0);
    await m.stop();
    assert.deepEqual(log.slice(3).sort(), ["everywhere:stop", "first:stop", "informer:stop", "second:stop"]);
    assert.equal(log.at(-1), "informer:stop", "caches stop after every part");
  });

  it("is not ready while a due cache lists, and stop() reports a part that failed to stop", async () => {
    const health = new HealthServer({ defaultMetrics: false });
    let listed: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      listed = r;
    });
    const slow = new Informer({
      description: "slow",
      list: async () => {
        await gate;
        return { items: [], resourceVersion: "1" };
      },
      watch: () => () => undefined,
    }) as unknown as Informer<never>;
    const m = new Manager({ health });
    m.addCache(slow);
    m.add({
      name: "failing",
      start() {},
      stop() {
        throw new Error("stuck");
      },
    });
    const started = m.start();
    await new Promise((r) => setImmediate(r));
    assert.match((await health.failing()).get("informers") ?? "", /caches not synced/);
    listed();
    await started;
    assert.equal((await health.failing()).size, 0);
    await assert.rejects(m.stop(), /stopping failed: parts/);
  });
});
