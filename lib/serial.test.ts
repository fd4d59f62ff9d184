import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Serial } from "./serial.js";

describe("Serial", () => {
  it("runs tasks one at a time in call order, each caller getting its own outcome", async () => {
    const s = new Serial();
    const order: string[] = [];
    let inFlight = 0;
    const task =
      (name: string, fail = false) =>
      async () => {
        inFlight++;
        assert.equal(inFlight, 1, "two tasks at once");
        order.push(`${name}:start`);
        await new Promise((r) => setTimeout(r, 5));
        order.push(`${name}:end`);
        inFlight--;
        if (fail) throw new Error(`${name} failed`);
        return name;
      };
    const a = s.run(task("a"));
    const b = s.run(task("b", true));
    const c = s.run(task("c"));
    assert.equal(await a, "a");
    await assert.rejects(b, /b failed/);
    assert.equal(await c, "c", "a failed task does not stop the next");
    await s.idle();
    assert.deepEqual(order, ["a:start", "a:end", "b:start", "b:end", "c:start", "c:end"]);
  });
});
