import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyedLock, Serial } from "./serial.js";

/** A task that runs until released, recording when it starts and ends. */
function gated(order: string[], name: string, fail = false) {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  const task = async () => {
    order.push(`${name}:start`);
    await opened;
    order.push(`${name}:end`);
    if (fail) throw new Error(`${name} failed`);
    return name;
  };
  return { task, open };
}

/** Lets every promise callback that is ready run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe("Serial", () => {
  it("runs tasks one at a time in call order, each caller getting its own outcome", async () => {
    const s = new Serial();
    const order: string[] = [];
    const a = gated(order, "a");
    const b = gated(order, "b", true);
    const c = gated(order, "c");
    const ra = s.run(a.task);
    const rb = s.run(b.task);
    const rc = s.run(c.task);
    await settle();
    assert.deepEqual(order, ["a:start"], "b waits for a");
    a.open();
    b.open();
    c.open();
    assert.equal(await ra, "a");
    await assert.rejects(rb, /b failed/);
    assert.equal(await rc, "c", "a failed task does not stop the next");
    await s.idle();
    assert.deepEqual(order, ["a:start", "a:end", "b:start", "b:end", "c:start", "c:end"]);
  });
});

describe("KeyedLock", () => {
  it("runs one key's tasks in call order and other keys' beside them", async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const x1 = gated(order, "x1", true);
    const x2 = gated(order, "x2");
    const y1 = gated(order, "y1");
    const r1 = lock.run("x", x1.task);
    const r2 = lock.run("x", x2.task);
    const r3 = lock.run("y", y1.task);
    await settle();
    assert.deepEqual(order, ["x1:start", "y1:start"], "x2 waits for x1; y1 does not");
    assert.equal(lock.size, 2);
    y1.open();
    assert.equal(await r3, "y1");
    await settle();
    assert.deepEqual(order, ["x1:start", "y1:start", "y1:end"], "x2 still waits");
    x1.open();
    await assert.rejects(r1, /x1 failed/);
    await settle();
    assert.ok(order.includes("x2:start"), "a failed task releases the key");
    x2.open();
    assert.equal(await r2, "x2");
  });

  it("forgets a key once nothing waits on it", async () => {
    const lock = new KeyedLock<number>();
    await Promise.all([1, 2, 3].map((k) => lock.run(k, async () => k)));
    await settle();
    assert.equal(lock.size, 0);
  });
});
