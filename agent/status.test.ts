import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DataplaneStatus } from "./dataplane/kernel.js";
import { nodeStatus, type StatusInput, statusFingerprint } from "./status.js";

const T0 = new Date("2026-11-22T10:00:00Z");
const T1 = new Date("2026-11-22T10:05:00Z");

function dataplane(over: Partial<DataplaneStatus> = {}): DataplaneStatus {
  return {
    owned: { routes: 3, neighbors: 2, fdb: 2 },
    desired: { routes: 3, neighbors: 2, fdb: 2 },
    vxlan: { name: "weft.vxlan", index: 7, underlay: "eth0", mtu: 1450 },
    conflicts: [],
    failed: [],
    counters: { resyncs: 0, repairs: 0, applies: 1, requests: 1, eventOverflows: 0 },
    converged: true,
    ...over,
  };
}

function input(over: Partial<StatusInput> = {}): StatusInput {
  return {
    previous: undefined,
    generation: 4,
    dataplane: dataplane(),
    appliedIntents: { "node-b": 2 },
    problems: [],
    vxlanWanted: true,
    kernel: { ipip: false },
    ipipWanted: false,
    now: T0,
    ...over,
  };
}

const condition = (s: ReturnType<typeof nodeStatus>, type: string) =>
  s.conditions?.find((c) => c.type === type);

describe("nodeStatus", () => {
  it("a converged VXLAN node is Ready, names its device and counts what it owns", () => {
    const s = nodeStatus(input());
    assert.equal(s.observedGeneration, 4);
    assert.deepEqual(s.appliedIntents, { "node-b": 2 });
    assert.deepEqual(s.owned, { routes: 3, neighbors: 2, fdb: 2 });
    assert.equal(s.lastSyncTime, "2026-11-22T10:00:00Z");
    const ready = condition(s, "Ready");
    assert.equal(ready?.status, "True");
    assert.equal(ready?.reason, "Converged");
    assert.equal(ready?.message, "3 routes, 2 neighbors, 2 FDB entries applied");
    assert.equal(ready?.observedGeneration, 4);
    assert.equal(condition(s, "VXLANDevice")?.message, "weft.vxlan over eth0, MTU 1450");
    assert.equal(condition(s, "KernelSupport")?.message, "VXLAN (no IPIP in this kernel)");
  });

  it("reports the underlay with the VXLAN and pod MTU, the CrossSubnet paths and the NAT table", () => {
    const s = nodeStatus(
      input({
        dataplane: dataplane({
          vxlan: { name: "weft.vxlan", index: 7, underlay: "eth0", mtu: 1350 },
          underlay: { name: "eth0", index: 2, mtu: 1400, addresses: ["192.0.2.11/24"] },
        }),
        podMTU: 1350,
        peerPaths: [{ node: "node-b", family: "IPv4", path: "Direct" }],
        nat: {
          applied: {
            pools: ["default"],
            sources: { v4: ["10.244.0.0/16"], v6: [] },
            inside: { v4: ["10.244.0.0/16"], v6: [] },
          },
        },
      }),
    );
    assert.deepEqual(s.underlay, {
      device: "eth0",
      mtu: 1400,
      addresses: ["192.0.2.11/24"],
      vxlanMTU: 1350,
      podMTU: 1350,
    });
    assert.deepEqual(s.peerPaths, [{ node: "node-b", family: "IPv4", path: "Direct" }]);
    assert.deepEqual(s.nat, { table: "inet weft", pools: ["default"] });
    assert.equal(condition(s, "OutgoingNAT")?.reason, "Applied");
    assert.equal(condition(s, "Ready")?.status, "True");
  });

  it("a NAT table that cannot be written is a condition and makes the node not Ready", () => {
    const s = nodeStatus(input({ nat: { error: "nft -f -: /usr/sbin/nft not found: install nftables" } }));
    assert.equal(condition(s, "OutgoingNAT")?.status, "False");
    assert.match(condition(s, "OutgoingNAT")?.message ?? "", /install nftables/);
    assert.equal(condition(s, "Ready")?.reason, "Degraded");
    assert.match(condition(s, "Ready")?.message ?? "", /outgoing NAT: .*install nftables/);
    assert.equal(s.nat, undefined);
    const none = nodeStatus(input({ nat: {} }));
    assert.equal(condition(none, "OutgoingNAT")?.reason, "NotNeeded");
  });

  it("says why it is not Ready: converging, a failed action first, or a missing VXLAN device", () => {
    const converging = nodeStatus(input({ dataplane: dataplane({ converged: false, lastError: "EBUSY" }) }));
    assert.equal(condition(converging, "Ready")?.reason, "Converging");
    assert.equal(condition(converging, "Ready")?.message, "EBUSY");

    const degraded = nodeStatus(
      input({
        dataplane: dataplane({ failed: [{ action: "route add 10.0.0.0/26", code: "ENETUNREACH" } as never] }),
        problems: ["intent node-c: no VTEP"],
      }),
    );
    assert.equal(condition(degraded, "Ready")?.reason, "Degraded");
    assert.equal(
      condition(degraded, "Ready")?.message,
      "2 problem(s); first: route add 10.0.0.0/26: ENETUNREACH",
    );

    const noDevice = nodeStatus(input({ dataplane: dataplane({ vxlan: undefined, lastError: "EPERM" }) }));
    assert.equal(condition(noDevice, "VXLANDevice")?.status, "False");
    assert.equal(condition(noDevice, "VXLANDevice")?.message, "EPERM");
    assert.equal(condition(nodeStatus(input({ vxlanWanted: false })), "VXLANDevice")?.reason, "NotNeeded");
  });

  it("reports an IPIP pool on a kernel without ipip as unsupported", () => {
    const s = nodeStatus(input({ ipipWanted: true }));
    assert.equal(condition(s, "KernelSupport")?.status, "False");
    assert.equal(condition(s, "KernelSupport")?.reason, "IPIPUnsupported");
    assert.equal(
      condition(nodeStatus(input({ ipipWanted: true, kernel: { ipip: true } })), "KernelSupport")?.status,
      "True",
    );
  });

  it("keeps a condition's transition time until its status flips", () => {
    const first = nodeStatus(input());
    const same = nodeStatus(input({ previous: first, now: T1 }));
    assert.equal(condition(same, "Ready")?.lastTransitionTime, "2026-11-22T10:00:00Z");
    const flipped = nodeStatus(
      input({ previous: first, now: T1, dataplane: dataplane({ converged: false }) }),
    );
    assert.equal(condition(flipped, "Ready")?.lastTransitionTime, "2026-11-22T10:05:00Z");
  });

  it("leaves appliedIntents out once none are applied, also when the previous status had some", () => {
    // server-side apply turns an owned map emptied to {} into null, which the CRD schema refuses
    const before = nodeStatus(input());
    const none = nodeStatus(input({ previous: before, appliedIntents: {} }));
    assert.equal("appliedIntents" in none, false);
    assert.equal(none.observedGeneration, 4);
  });

  it("keeps fields another writer added (the BGP sessions) from the previous status", () => {
    const previous = { ...nodeStatus(input()), bgpSessions: [] };
    assert.deepEqual(nodeStatus(input({ previous })).bgpSessions, []);
  });

  it("fingerprints everything but the sync time", () => {
    const a = nodeStatus(input());
    assert.equal(statusFingerprint(a), statusFingerprint(nodeStatus(input({ previous: a, now: T1 }))));
    assert.notEqual(statusFingerprint(a), statusFingerprint(nodeStatus(input({ appliedIntents: {} }))));
  });
});
