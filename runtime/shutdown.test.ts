import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GracefulShutdown } from "./shutdown.js";

describe("GracefulShutdown", () => {
  it("runs informers, then queues, then the lease, once, and exits 0", async () => {
    const order: string[] = [];
    const codes: number[] = [];
    const step = (name: string) => ({
      stop: async () => {
        await new Promise((r) => setTimeout(r, 2));
        order.push(name);
      },
    });
    const s = new GracefulShutdown({ exit: (c) => codes.push(c) }).addRuntime({
      informers: [step("informer-a"), step("informer-b")],
      controllers: [step("queue")],
      elector: step("lease"),
    });
    assert.equal(s.signal.aborted, false);
    await Promise.all([s.run("SIGTERM"), s.run("SIGTERM")]);
    assert.equal(s.signal.aborted, true);
    assert.deepEqual(order.slice(0, 2).sort(), ["informer-a", "informer-b"]);
    assert.deepEqual(order.slice(2), ["queue", "lease"]);
    assert.deepEqual(codes, [0]);
  });

  it("keeps going after a failing step and exits 1", async () => {
    const codes: number[] = [];
    const ran: string[] = [];
    await new GracefulShutdown({ exit: (c) => codes.push(c) })
      .add("bad", () => {
        throw new Error("boom");
      })
      .add("good", () => {
        ran.push("good");
      })
      .run();
    assert.deepEqual(ran, ["good"]);
    assert.deepEqual(codes, [1]);
  });

  it("exits 1 when the steps take longer than the timeout", async () => {
    const codes: number[] = [];
    const s = new GracefulShutdown({ timeoutMs: 10, exit: (c) => codes.push(c) }).add(
      "stuck",
      () => new Promise((r) => setTimeout(r, 100)),
    );
    await s.run();
    assert.deepEqual(codes, [1], "exits once, with 1");
  });
});
