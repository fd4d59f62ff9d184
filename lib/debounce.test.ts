import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SerialDebounce } from "./debounce.js";

const until = async (check: () => boolean) => {
  while (!check()) await new Promise((r) => setTimeout(r, 2));
};

describe("SerialDebounce", () => {
  it("runs once for a burst, never two at once, and a pass scheduled meanwhile follows", async () => {
    let runs = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const gates: Array<() => void> = [];
    const d = new SerialDebounce(
      5,
      async () => {
        runs++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise<void>((r) => gates.push(r));
        inFlight--;
      },
      () => assert.fail("no error expected"),
    );
    for (let i = 0; i < 5; i++) d.schedule();
    await until(() => runs === 1);
    d.schedule(); // while the first pass is held open
    d.schedule();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(runs, 1, "the next pass waits for the running one");
    gates.shift()?.();
    await until(() => runs === 2);
    gates.shift()?.();
    await d.stop();
    assert.equal(runs, 2, "five calls, then two during a pass: two passes");
    assert.equal(maxInFlight, 1);
  });

  it("runNow runs a pass after the running one, in series with scheduled passes, and returns its error", async () => {
    const order: string[] = [];
    let release: (() => void) | undefined;
    let fail = false;
    const d = new SerialDebounce(
      1,
      async () => {
        order.push("start");
        if (order.length === 1) await new Promise<void>((r) => (release = r));
        order.push("end");
        if (fail) throw new Error("refused");
      },
      () => assert.fail("runNow's error goes to its caller"),
    );
    d.schedule();
    await until(() => release !== undefined);
    const now = d.runNow();
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(order, ["start"], "runNow waits for the running pass");
    release?.();
    await now;
    assert.deepEqual(order, ["start", "end", "start", "end"]);
    fail = true;
    await assert.rejects(d.runNow(), /refused/);
    await d.stop();
  });

  it("reports a failing pass and keeps going; nothing runs after stop", async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const d = new SerialDebounce(
      1,
      async () => {
        runs++;
        if (runs === 1) throw new Error("boom");
      },
      (err) => errors.push(err),
    );
    d.schedule();
    await until(() => errors.length === 1);
    d.schedule();
    await until(() => runs === 2);
    d.schedule();
    await d.stop();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(runs, 2, "the pass scheduled before stop never ran");
  });
});

describe("SerialDebounce under load", () => {
  it("folds every request made during a pass into one pass after it; nothing waiting starts after stop", async () => {
    let runs = 0;
    const gates: Array<() => void> = [];
    const d = new SerialDebounce(
      1,
      async () => {
        runs++;
        await new Promise<void>((r) => gates.push(r));
      },
      () => assert.fail("no error expected"),
    );
    const first = d.runNow();
    await until(() => runs === 1);
    const during = [d.runNow(), d.runNow(), d.runNow()];
    gates.shift()?.();
    await first;
    await until(() => runs === 2);
    gates.shift()?.();
    await Promise.all(during);
    assert.equal(runs, 2, "three requests during a pass: one pass after it");

    const third = d.runNow();
    await until(() => runs === 3);
    const waiting = d.runNow();
    const stopped = d.stop();
    gates.shift()?.();
    await Promise.all([third, waiting, stopped]);
    assert.equal(runs, 3, "the pass waiting when stop was called never ran");
  });
});
