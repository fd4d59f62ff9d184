import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InMemoryAssigner } from "./memory-assigner.js";

describe("InMemoryAssigner", () => {
  it("is idempotent per handle, reuses released addresses and reports exhaustion", async () => {
    const a = new InMemoryAssigner({ ipv4: "10.1.0.0/30", ipv6: "fd00:1::/120" });
    const req = (handle: string) => ({
      node: "n",
      handle,
      namespace: "ns",
      pod: "p",
      families: ["ipv4" as const],
    });
    const first = await a.assign(req("h1"));
    assert.deepEqual(first.ips, ["10.1.0.1"]);
    assert.deepEqual((await a.assign(req("h1"))).ips, ["10.1.0.1"]);
    assert.deepEqual((await a.assign(req("h2"))).ips, ["10.1.0.2"]);
    await assert.rejects(a.assign(req("h3")), /exhausted/);
    await a.release("h1");
    await a.release("h1");
    assert.equal(await a.lookup("h1"), undefined);
    assert.deepEqual((await a.assign(req("h3"))).ips, ["10.1.0.1"]);
    const dual = await a.assign({ ...req("h4"), families: ["ipv6"] });
    assert.deepEqual(dual.ips, ["fd00:1::1"]);
    assert.deepEqual((await a.handles("n")).sort(), ["h2", "h3", "h4"]);
  });
});
