import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { API_VERSION, type IPAMBlock, type IPPool, VXLAN_DEVICE } from "../../api/index.js";
import { vtepHandle } from "../../ipam/index.js";
import { computeRouteIntent } from "./compute.js";
import { desiredIntent } from "./reconciler.js";

describe("computeRouteIntent", () => {
  const vtep = { ip: "10.244.1.0", mac: "02:00:00:00:00:01", vni: 4096, port: 4789 };

  it("VXLAN: one route per block, one neighbor, one FDB entry", () => {
    const spec = computeRouteIntent({
      node: "n1",
      underlayIP: "192.0.2.11",
      vtep,
      blocks: [
        { cidr: "10.244.1.64/26", encapsulation: "VXLAN" },
        { cidr: "10.244.1.0/26", encapsulation: "VXLAN" },
      ],
    });
    assert.deepEqual(spec.routes, [
      { dst: "10.244.1.0/26", gateway: vtep.ip, device: VXLAN_DEVICE, onlink: true },
      { dst: "10.244.1.64/26", gateway: vtep.ip, device: VXLAN_DEVICE, onlink: true },
    ]);
    assert.deepEqual(spec.neighbors, [{ ip: vtep.ip, mac: vtep.mac, device: VXLAN_DEVICE }]);
    assert.deepEqual(spec.fdb, [{ mac: vtep.mac, dst: "192.0.2.11", device: VXLAN_DEVICE }]);
    assert.equal(spec.encapsulation, "VXLAN");
    assert.deepEqual(spec.vtep, vtep);
  });

  it("host-gw: routes via the underlay address, no ARP or FDB", () => {
    const spec = computeRouteIntent({
      node: "n2",
      underlayIP: "192.0.2.12",
      blocks: [{ cidr: "10.244.2.0/24", encapsulation: "HostGW" }],
    });
    assert.deepEqual(spec.routes, [{ dst: "10.244.2.0/24", gateway: "192.0.2.12" }]);
    assert.deepEqual(spec.neighbors, []);
    assert.deepEqual(spec.fdb, []);
    assert.equal(spec.encapsulation, "HostGW");
    assert.equal(spec.vtep, undefined);
  });

  it("BGP: no routes (BIRD distributes them)", () => {
    const spec = computeRouteIntent({
      node: "n3",
      underlayIP: "192.0.2.13",
      blocks: [{ cidr: "10.244.3.0/26", encapsulation: "BGP" }],
    });
    assert.deepEqual(spec.routes, []);
    assert.equal(spec.encapsulation, "BGP");
  });

  it("refuses VXLAN blocks without a VTEP", () => {
    assert.throws(
      () =>
        computeRouteIntent({
          node: "n4",
          underlayIP: "192.0.2.14",
          blocks: [{ cidr: "10.0.0.0/26", encapsulation: "VXLAN" }],
        }),
      /n4 has VXLAN blocks but no VTEP/,
    );
  });

  it("is independent of block order", () => {
    const blocks = [
      { cidr: "10.244.9.0/26", encapsulation: "VXLAN" as const },
      { cidr: "10.244.8.0/26", encapsulation: "VXLAN" as const },
    ];
    const a = computeRouteIntent({ node: "n", underlayIP: "192.0.2.1", vtep, blocks });
    const b = computeRouteIntent({ node: "n", underlayIP: "192.0.2.1", vtep, blocks: [...blocks].reverse() });
    assert.deepEqual(a, b);
  });
});

describe("the underlay address of an intent", () => {
  const pools: IPPool[] = [
    { apiVersion: API_VERSION, kind: "IPPool", metadata: { name: "v4" }, spec: { cidr: "10.244.0.0/16" } },
    {
      apiVersion: API_VERSION,
      kind: "IPPool",
      metadata: { name: "v6" },
      spec: { cidr: "fd00:10:244::/56", encapsulation: "HostGW" },
    },
  ];
  const block = (
    cidr: string,
    pool: string,
    allocations: IPAMBlock["spec"]["allocations"] = [],
  ): IPAMBlock => ({
    apiVersion: API_VERSION,
    kind: "IPAMBlock",
    metadata: { name: cidr },
    spec: { cidr, pool, affinity: "n1", allocations, sequence: 1 },
  });
  const vxlanBlock = block("10.244.1.0/26", "v4", [{ ordinal: 0, handle: vtepHandle("n1"), sequence: 1 }]);
  const node = (annotation: string, ...internal: string[]): k8s.V1Node => ({
    metadata: { name: "n1", annotations: { "weft.dev/underlay-ip": annotation } },
    status: { addresses: internal.map((address) => ({ type: "InternalIP", address })) },
  });

  it("a comma-separated dual-stack annotation gives the IPv4 address to an IPv4 intent", () => {
    const d = desiredIntent("n1", node("fd00::11,192.0.2.11", "fd00::99", "192.0.2.99"), [vxlanBlock], pools);
    assert.ok("spec" in d, JSON.stringify(d));
    assert.equal(d.spec.underlayIP, "192.0.2.11");
    assert.deepEqual(
      d.spec.fdb.map((f) => f.dst),
      ["192.0.2.11"],
    );
    assert.deepEqual(d.problems, []);
  });

  it("an intent of IPv6 blocks only names the IPv6 address", () => {
    const d = desiredIntent("n1", node("192.0.2.11, fd00::11"), [block("fd00:10:244::/122", "v6")], pools);
    assert.ok("spec" in d);
    assert.equal(d.spec.underlayIP, "fd00::11");
    assert.deepEqual(d.spec.routes, [{ dst: "fd00:10:244::/122", gateway: "fd00::11" }]);
  });

  it("garbage in the annotation is reported, not used", () => {
    const d = desiredIntent("n1", node("192.0.2.11/24", "192.0.2.99"), [vxlanBlock], pools);
    assert.ok("spec" in d);
    assert.equal(d.spec.underlayIP, "192.0.2.99");
    assert.equal(d.problems.length, 1);
    assert.match(d.problems[0] ?? "", /"192\.0\.2\.11\/24" is not an IP address/);

    const none = desiredIntent("n1", node("nonsense"), [vxlanBlock], pools);
    assert.ok("wait" in none);
    assert.equal(none.wait.reason, "NoUnderlayAddress");
    assert.match(none.wait.message, /"nonsense" is not an IP address/);
  });

  it("Flannel profile: the device, VNI and port of the profile, and the MAC the adopted lease named", () => {
    const adopted: IPAMBlock = {
      ...vxlanBlock,
      metadata: { name: "b", annotations: { "weft.dev/vtep-mac": "c6:d2:32:6f:8f:44" } },
    };
    const flannel = { vxlan: () => ({ vni: 1, port: 8472, device: "flannel.1" }) };
    const d = desiredIntent("n1", node("", "192.0.2.11"), [adopted], pools, flannel);
    assert.ok("spec" in d);
    assert.deepEqual(d.spec.vtep, {
      ip: "10.244.1.0",
      mac: "c6:d2:32:6f:8f:44",
      vni: 1,
      port: 8472,
      device: "flannel.1",
    });
    assert.deepEqual(d.spec.neighbors, [{ ip: "10.244.1.0", mac: "c6:d2:32:6f:8f:44", device: "flannel.1" }]);
    assert.equal(d.spec.routes[0]?.device, "flannel.1");
    const plain = desiredIntent("n1", node("", "192.0.2.11"), [vxlanBlock], pools);
    assert.ok("spec" in plain);
    assert.equal(plain.spec.vtep?.device, undefined, "without the profile: weft.vxlan, unnamed");
    assert.equal(plain.spec.neighbors[0]?.device, VXLAN_DEVICE);
  });
});
