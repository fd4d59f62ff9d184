import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Controller } from "./controller.js";
import { defaultRateLimiter, WorkQueue } from "./workqueue.js";

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the value, or with "pending" if the promise has not settled after a few turns. */
async function peek<T>(p: Promise<T>): Promise<T | "pending"> {
  const later = async () => {
    await tick();
    await tick();
    return "pending" as const;
  };
  return Promise.race([p, later()]);
}

describe("WorkQueue", () => {
  it("keeps a key once however often it is added, in first-added order", async () => {
    const q = new WorkQueue();
    for (const k of ["a", "a", "b", "a", "c", "b"]) q.add(k);
    assert.equal(q.length, 3);
    assert.equal(await q.get(), "a");
    assert.equal(await q.get(), "b");
    assert.equal(await q.get(), "c");
    assert.equal(q.length, 0);
  });

  it("never hands a key to a second worker while the first has it; a re-add comes back after done", async () => {
    const q = new WorkQueue();
    q.add("a");
    assert.equal(await q.get(), "a");
    q.add("a");
    q.add("a");
    assert.equal(q.length, 0, "a key being processed must not be queued again");
    const second = q.get();
    assert.equal(await peek(second), "pending");
    q.done("a");
    assert.equal(await second, "a", "the re-added key comes back once, after done");
    q.done("a");
    assert.equal(q.length, 0);
  });

  it("with many workers and repeated adds, no key is ever processed twice at once", async () => {
    const q = new WorkQueue();
    const inFlight = new Set<string>();
    let processed = 0;
    let overlap = 0;
    const worker = async () => {
      for (;;) {
        const key = await q.get();
        if (key === undefined) return;
        if (inFlight.has(key)) overlap++;
        inFlight.add(key);
        await sleep(Math.random() * 3);
        inFlight.delete(key);
        processed++;
        q.done(key);
      }
    };
    const workers = Array.from({ length: 6 }, worker);
    for (let round = 0; round < 200; round++) {
      q.add(`k${round % 5}`);
      if (round % 7 === 0) await sleep(1);
    }
    await q.shutdown(true);
    await Promise.all(workers);
    assert.equal(overlap, 0);
    assert.ok(processed >= 5, `every key processed at least once (${processed})`);
    assert.equal(inFlight.size, 0);
  });

  it("retries a failing key after a backoff that doubles per failure until forget", async () => {
    assert.deepEqual([1, 2, 3, 4].map(defaultRateLimiter), [10, 20, 40, 80]);
    assert.equal(defaultRateLimiter(40), 60_000, "capped");
    const asked: number[] = [];
    const q = new WorkQueue({
      rateLimiter: (n) => {
        asked.push(n);
        return 5;
      },
    });
    q.add("x");
    for (let attempt = 1; attempt <= 3; attempt++) {
      const key = await q.get();
      assert.equal(key, "x");
      q.addRateLimited("x");
      assert.equal(q.numRequeues("x"), attempt);
      assert.equal(q.length, 0, "a retry waits out its backoff");
      q.done("x");
    }
    assert.equal(await q.get(), "x", "the key comes back after its backoff");
    q.forget("x");
    q.done("x");
    assert.equal(q.numRequeues("x"), 0);
    q.addRateLimited("x");
    assert.deepEqual(asked, [1, 2, 3, 1], "after forget the backoff starts over");
    await q.shutdown(false);
  });

  it("addAfter delays a key; an earlier due time replaces a later one", async () => {
    const q = new WorkQueue();
    q.addAfter("late", 60_000);
    q.addAfter("late", 5);
    assert.equal(q.length, 0);
    assert.equal(await q.get(), "late");
    q.done("late");
    await q.shutdown();
  });

  it("shutdown with drain hands out what is queued, ignores new keys and resolves when all are done", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("b");
    q.addAfter("delayed", 60_000);
    const first = await q.get();
    let drained = false;
    const shut = q.shutdown(true).then(() => {
      drained = true;
    });
    q.add("c");
    assert.equal(await q.get(), "b", "queued keys are still handed out while draining");
    q.done("b");
    await tick();
    assert.equal(drained, false, "a is still being processed");
    q.done(first!);
    await shut;
    assert.equal(drained, true);
    assert.equal(await q.get(), undefined, "nothing after shutdown: not c, not the delayed key");
  });

  it("shutdown without drain drops queued keys and waits only for keys in flight", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("b");
    const a = await q.get();
    const idle = q.get();
    assert.equal(await peek(idle), "b");
    const third = q.get();
    q.add("c");
    assert.equal(await third, "c");
    q.add("d");
    const shut = q.shutdown(false);
    assert.equal(await q.get(), undefined, "d was dropped");
    q.done(a!);
    q.done("b");
    assert.equal(await peek(shut), "pending", "c is still in flight");
    q.done("c");
    await shut;
  });

  it("wakes idle workers with undefined on shutdown", async () => {
    const q = new WorkQueue();
    const waiting = [q.get(), q.get()];
    await q.shutdown();
    assert.deepEqual(await Promise.all(waiting), [undefined, undefined]);
  });
});

describe("Controller", () => {
  it("retries a failing reconcile with backoff, forgets on success and honours requeueAfter", async () => {
    const calls: string[] = [];
    let failuresLeft = 2;
    let requeued = false;
    const c = new Controller(
      "test-retry",
      {
        async reconcile(key) {
          calls.push(key);
          if (key === "flaky" && failuresLeft-- > 0) throw new Error("not yet");
          if (key === "poll" && !requeued) {
            requeued = true;
            return { requeueAfter: 5 };
          }
        },
      },
      { workers: 2, rateLimiter: () => 5 },
    );
    c.start();
    c.enqueue("flaky");
    c.enqueue("poll");
    const deadline = Date.now() + 10_000;
    while (calls.filter((k) => k === "flaky").length < 3 || calls.filter((k) => k === "poll").length < 2) {
      assert.ok(Date.now() < deadline, `reconciles seen: ${calls.join(",")}`);
      await sleep(5);
    }
    await c.stop();
    assert.equal(calls.filter((k) => k === "flaky").length, 3, "two failures, then success");
    assert.equal(c.queue.numRequeues("flaky"), 0, "forgotten after success");
    assert.equal(calls.filter((k) => k === "poll").length, 2);
  });

  it("stop drains the queue: every key enqueued before stop is reconciled", async () => {
    const seen = new Set<string>();
    const c = new Controller("test-drain", {
      async reconcile(key) {
        await sleep(1);
        seen.add(key);
      },
    });
    c.start();
    for (let i = 0; i < 20; i++) c.enqueue(`k${i}`);
    await c.stop();
    assert.equal(seen.size, 20);
  });
});
