import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupCommit, KeyedGroupCommit, type Waiting } from "./groupcommit.js";
import { Serial } from "./serial.js";

/** Lets every callback that is ready run (promise jobs and one event-loop turn). */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** A commit that records each batch and waits to be released, answering each request with item * 10. */
function heldCommits() {
  const batches: number[][] = [];
  const gates: Array<() => void> = [];
  const commit = async (batch: Array<Waiting<number, number>>) => {
    batches.push(batch.map((w) => w.item));
    await new Promise<void>((r) => gates.push(r));
    for (const w of batch) w.resolve(w.item * 10);
  };
  return { batches, gates, commit };
}

describe("GroupCommit", () => {
  it("commits what arrives during a commit as one next batch, never two at once", async () => {
    const { batches, gates, commit } = heldCommits();
    const gc = new GroupCommit<number, number>(commit);
    const first = gc.submit(1);
    await settle();
    const rest = [2, 3, 4].map((n) => gc.submit(n));
    await settle();
    assert.deepEqual(batches, [[1]], "the second batch waits for the first commit");
    assert.equal(gc.idle, false);
    gates.shift()?.();
    assert.equal(await first, 10);
    await settle();
    assert.deepEqual(batches, [[1], [2, 3, 4]]);
    gates.shift()?.();
    assert.deepEqual(await Promise.all(rest), [20, 30, 40]);
    await gc.whenIdle();
    assert.ok(gc.idle);
  });

  it("gather: requests made in the same event-loop turn share the first batch", async () => {
    const batchesOf = async (gather: boolean) => {
      const batches: number[][] = [];
      const gc = new GroupCommit<number, number>(
        async (batch) => {
          batches.push(batch.map((w) => w.item));
          for (const w of batch) w.resolve(w.item);
        },
        { gather },
      );
      const first = gc.submit(1);
      // a second callback of the same turn, a few promise jobs later
      await Promise.resolve();
      await Promise.resolve();
      await Promise.all([first, gc.submit(2)]);
      return batches;
    };
    assert.deepEqual(await batchesOf(false), [[1], [2]]);
    assert.deepEqual(await batchesOf(true), [[1, 2]]);
  });

  it("a throwing commit rejects its batch only; the next batch still runs", async () => {
    let calls = 0;
    const gc = new GroupCommit<string, string>(async (batch) => {
      calls++;
      if (calls === 1) throw new Error("write refused");
      for (const w of batch) w.resolve(`ok ${w.item}`);
    });
    const a = gc.submit("a");
    const b = gc.submit("b"); // joins a's batch: the commit has not started yet
    await assert.rejects(a, /write refused/);
    await assert.rejects(b, /write refused/);
    assert.equal(await gc.submit("c"), "ok c");
  });

  it("more() takes the accepted requests that arrived after the batch closed", async () => {
    const seen: string[][] = [];
    let retry: (() => void) | undefined;
    const gc = new GroupCommit<string, string>(async (batch, more) => {
      seen.push(batch.map((w) => w.item));
      if (seen.length > 1) {
        for (const w of batch) w.resolve(`late ${w.item}`);
        return;
      }
      await new Promise<void>((r) => {
        retry = r;
      });
      const extra = more((item) => item.startsWith("x"));
      for (const w of [...batch, ...extra]) w.resolve(`with first ${w.item}`);
    });
    const first = gc.submit("x1");
    await settle();
    const x2 = gc.submit("x2");
    const y = gc.submit("y");
    retry?.();
    assert.equal(await first, "with first x1");
    assert.equal(await x2, "with first x2", "taken into the running commit");
    assert.equal(await y, "late y", "not accepted: committed by the next batch");
    assert.deepEqual(seen, [["x1"], ["y"]]);
  });

  it("a request the commit forgot to settle is rejected instead of hanging", async () => {
    const gc = new GroupCommit<number, number>(async (batch) => {
      batch[0]?.resolve(1);
    });
    const [a, b] = [gc.submit(1), gc.submit(2)];
    assert.equal(await a, 1);
    await assert.rejects(b, /without an outcome/);
  });

  it("on a shared Serial, a batch stays open until its turn and runs in line with other tasks", async () => {
    const serial = new Serial();
    const order: string[] = [];
    let release: (() => void) | undefined;
    const other = serial.run(async () => {
      order.push("other:start");
      await new Promise<void>((r) => {
        release = r;
      });
      order.push("other:end");
    });
    const gc = new GroupCommit<number, number>(
      async (batch) => {
        order.push(`commit ${batch.map((w) => w.item).join(",")}`);
        for (const w of batch) w.resolve(w.item);
      },
      { serial },
    );
    const a = gc.submit(1);
    await settle();
    const b = gc.submit(2);
    await settle();
    assert.deepEqual(order, ["other:start"]);
    release?.();
    await Promise.all([other, a, b]);
    assert.deepEqual(order, ["other:start", "other:end", "commit 1,2"]);
  });
});

describe("KeyedGroupCommit", () => {
  it("batches per key, keys independent, and forgets idle keys", async () => {
    const batches: string[] = [];
    const gates = new Map<string, () => void>();
    const kgc = new KeyedGroupCommit<string, number, string>(async (key, batch) => {
      batches.push(`${key}:${batch.map((w) => w.item).join(",")}`);
      await new Promise<void>((r) => gates.set(key, r));
      for (const w of batch) w.resolve(`${key}${w.item}`);
    });
    const a1 = kgc.submit("a", 1);
    const b1 = kgc.submit("b", 1);
    await settle();
    const a2 = kgc.submit("a", 2);
    const a3 = kgc.submit("a", 3);
    await settle();
    assert.deepEqual(batches, ["a:1", "b:1"], "b commits beside a");
    assert.equal(kgc.size, 2);
    gates.get("b")?.();
    assert.equal(await b1, "b1");
    gates.get("a")?.();
    assert.equal(await a1, "a1");
    await settle();
    assert.deepEqual(batches, ["a:1", "b:1", "a:2,3"]);
    gates.get("a")?.();
    assert.deepEqual(await Promise.all([a2, a3]), ["a2", "a3"]);
    await settle();
    assert.equal(kgc.size, 0);
  });
});
