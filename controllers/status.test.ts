import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPAMBlock, RouteIntent } from "../api/index.js";
import { desiredBlockStatus } from "./ipam/blockstatus.js";
import { intentStatus } from "./routeintent/status.js";

const t0 = new Date("2026-11-22T10:00:00Z");
const t1 = new Date("2026-11-22T11:00:00Z");

function intent(generation: number, status?: RouteIntent["status"]): RouteIntent {
  return {
    apiVersion: "weft.dev/v1alpha1",
    kind: "RouteIntent",
    metadata: { name: "n1", generation },
    spec: {
      node: "n1",
      underlayIP: "192.0.2.1",
      encapsulation: "HostGW",
      routes: [{ dst: "10.0.0.0/26", gateway: "192.0.2.1" }],
      neighbors: [],
      fdb: [],
    },
    ...(status ? { status } : {}),
  };
}

function block(spec: Partial<IPAMBlock["spec"]>, generation = 3, status?: IPAMBlock["status"]): IPAMBlock {
  return {
    apiVersion: "weft.dev/v1alpha1",
    kind: "IPAMBlock",
    metadata: { name: "10-0-0-0-26", generation },
    spec: { cidr: "10.0.0.0/26", pool: "p", affinity: "n1", allocations: [], sequence: 0, ...spec },
    ...(status ? { status } : {}),
  };
}

describe("RouteIntent status", () => {
  it("is Ready at the intent's generation, describing what it publishes", () => {
    const s = intentStatus(intent(4), undefined, t0);
    assert.equal(s.observedGeneration, 4);
    assert.deepEqual(s.conditions, [
      {
        type: "Ready",
        status: "True",
        reason: "Published",
        message: "1 route, 0 neighbors, 0 FDB entries for HostGW via 192.0.2.1",
        lastTransitionTime: "2026-11-22T10:00:00Z",
        observedGeneration: 4,
      },
    ]);
  });

  it("says why it is not complete, and keeps the transition time while the status stays", () => {
    const waiting = intentStatus(intent(4), { reason: "WaitingForVTEP", message: "m" }, t0);
    assert.equal(waiting.conditions?.[0]?.status, "False");
    assert.equal(waiting.conditions?.[0]?.reason, "WaitingForVTEP");
    const later = intentStatus(intent(5, waiting), { reason: "WaitingForVTEP", message: "m" }, t1);
    assert.equal(later.conditions?.[0]?.lastTransitionTime, "2026-11-22T10:00:00Z");
    assert.equal(later.conditions?.[0]?.observedGeneration, 5);
    const ready = intentStatus(intent(5, later), undefined, t1);
    assert.equal(ready.conditions?.[0]?.lastTransitionTime, "2026-11-22T11:00:00Z");
  });
});

describe("IPAMBlock status", () => {
  const facts = { nodeExists: true, poolExists: true };
  const ready = (b: IPAMBlock, f = facts) => desiredBlockStatus(b, f, t0).conditions?.[0];

  it("is Ready while an existing node owns it in an existing pool, with usage in the message", () => {
    const used = block({ allocations: [{ ordinal: 1, handle: "h", sequence: 0 }] });
    const s = desiredBlockStatus(used, facts, t0);
    assert.equal(s.observedGeneration, 3);
    assert.equal(s.conditions?.[0]?.status, "True");
    assert.equal(s.conditions?.[0]?.reason, "Claimed");
    assert.match(s.conditions?.[0]?.message ?? "", /node n1; 1 of 64 addresses in use/);
  });

  it("is not Ready when released, when its node is gone, or when its pool is gone", () => {
    assert.equal(ready(block({ affinity: "" }))?.reason, "Released");
    assert.equal(ready(block({}), { nodeExists: false, poolExists: true })?.reason, "NodeMissing");
    assert.equal(ready(block({}), { nodeExists: true, poolExists: false })?.reason, "PoolMissing");
    for (const f of [
      { nodeExists: false, poolExists: true },
      { nodeExists: true, poolExists: false },
    ])
      assert.equal(ready(block({}), f)?.status, "False");
  });

  it("counts addresses of IPv6 blocks", () => {
    const v6 = block({ cidr: "fd00::/122" });
    assert.match(ready(v6)?.message ?? "", /0 of 64 addresses/);
  });
});
