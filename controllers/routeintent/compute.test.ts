import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { API_VERSION, type IPAMBlock, type IPPool, VXLAN_DEVICE } from "../../api/index.js";
import { vtepHandle } from "../../ipam/index.js";
import { computeRouteIntent } from "./compute.js";
import { desiredIntent } from "./reconciler.js";
import { underlaySubnets } from "./underlay.js";

describe("computeRouteIntent", () => {
  const vtep = { ip: "10.244.1.0", mac: "02:00:00:00:00:01", vni: 4096, port: 4789 };

  it("VXLAN: one route per block, one neighbor, one FDB entry", () => {
    const { spec, leftOut } = computeRouteIntent({
      node: "n1",
      underlay: { 4: "192.0.2.11" },
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
    assert.deepEqual(leftOut, []);
  });

  it("VXLAN dual stack: IPv6 blocks via the IPv6 VTEP (an NDP entry), one FDB entry over the IPv4 underlay", () => {
    const { spec, leftOut } = computeRouteIntent({
      node: "n1",
      underlay: { 4: "192.0.2.11", 6: "2001:db8::11" },
      vtep: { ...vtep, ipv6: "fd00:10:244:1::" },
      blocks: [
        { cidr: "10.244.1.0/26", encapsulation: "VXLAN" },
        { cidr: "fd00:10:244:1::/122", encapsulation: "VXLAN" },
      ],
    });
    assert.deepEqual(spec.routes, [
      { dst: "10.244.1.0/26", gateway: vtep.ip, device: VXLAN_DEVICE, onlink: true },
      { dst: "fd00:10:244:1::/122", gateway: "fd00:10:244:1::", device: VXLAN_DEVICE, onlink: true },
    ]);
    assert.deepEqual(spec.neighbors, [
      { ip: vtep.ip, mac: vtep.mac, device: VXLAN_DEVICE },
      { ip: "fd00:10:244:1::", mac: vtep.mac, device: VXLAN_DEVICE },
    ]);
    assert.deepEqual(spec.fdb, [{ mac: vtep.mac, dst: "192.0.2.11", device: VXLAN_DEVICE }]);
    assert.equal(spec.underlayIPv6, "2001:db8::11");
    assert.deepEqual(leftOut, []);
  });

  it("IPv6-only VXLAN pool: an IPv6 VTEP only, still one FDB entry over the IPv4 underlay", () => {
    const { spec } = computeRouteIntent({
      node: "n1",
      underlay: { 4: "192.0.2.11" },
      vtep: { mac: vtep.mac, vni: 4096, port: 4789, ipv6: "fd00:10:244:1::" },
      blocks: [{ cidr: "fd00:10:244:1::/122", encapsulation: "VXLAN" }],
    });
    assert.deepEqual(spec.vtep, { mac: vtep.mac, vni: 4096, port: 4789, ipv6: "fd00:10:244:1::" });
    assert.deepEqual(spec.neighbors, [{ ip: "fd00:10:244:1::", mac: vtep.mac, device: VXLAN_DEVICE }]);
    assert.deepEqual(spec.fdb, [{ mac: vtep.mac, dst: "192.0.2.11", device: VXLAN_DEVICE }]);
  });

  it("never mixes families: an IPv6 block without an IPv6 VTEP or underlay address is left out, named", () => {
    const { spec, leftOut } = computeRouteIntent({
      node: "n1",
      underlay: { 4: "192.0.2.11" },
      vtep,
      blocks: [
        { cidr: "10.244.1.0/26", encapsulation: "VXLAN" },
        { cidr: "fd00:10:244:1::/122", encapsulation: "VXLAN", name: "fd00-10-244-1---122", pool: "v6" },
        { cidr: "fd00:10:245:1::/122", encapsulation: "HostGW", name: "fd00-10-245-1---122", pool: "gw6" },
      ],
    });
    assert.deepEqual(
      spec.routes.map((r) => r.dst),
      ["10.244.1.0/26"],
    );
    assert.equal(leftOut.length, 2);
    assert.match(leftOut[0]!, /IPAMBlock fd00-10-244-1---122 \(pool v6\).*no IPv6 VTEP address/);
    assert.match(leftOut[1]!, /IPAMBlock fd00-10-245-1---122 \(pool gw6\).*no IPv6 underlay address/);
    for (const r of spec.routes) assert.equal(r.gateway?.includes(":"), r.dst.includes(":"));
  });

  it("host-gw: routes via the underlay address of the block's family, no ARP or FDB", () => {
    const { spec } = computeRouteIntent({
      node: "n2",
      underlay: { 4: "192.0.2.12", 6: "2001:db8::12" },
      blocks: [
        { cidr: "10.244.2.0/24", encapsulation: "HostGW" },
        { cidr: "fd00:10:244:2::/122", encapsulation: "HostGW" },
      ],
    });
    assert.deepEqual(spec.routes, [
      { dst: "10.244.2.0/24", gateway: "192.0.2.12" },
      { dst: "fd00:10:244:2::/122", gateway: "2001:db8::12" },
    ]);
    assert.deepEqual(spec.neighbors, []);
    assert.deepEqual(spec.fdb, []);
    assert.equal(spec.encapsulation, "HostGW");
    assert.equal(spec.vtep, undefined);
  });

  it("CrossSubnet: each VXLAN route carries the direct next hop of its family, the intent the subnets", () => {
    const { spec } = computeRouteIntent({
      node: "n1",
      underlay: { 4: "192.0.2.11", 6: "2001:db8::11" },
      vtep: { ...vtep, ipv6: "fd00:10:244:1::" },
      underlaySubnets: ["192.0.2.0/24", "2001:db8::/64"],
      blocks: [
        { cidr: "10.244.1.0/26", encapsulation: "VXLAN", crossSubnet: true },
        { cidr: "fd00:10:244:1::/122", encapsulation: "VXLAN", crossSubnet: true },
      ],
    });
    assert.deepEqual(
      spec.routes.map((r) => [r.dst, r.gateway, r.direct]),
      [
        ["10.244.1.0/26", vtep.ip, "192.0.2.11"],
        ["fd00:10:244:1::/122", "fd00:10:244:1::", "2001:db8::11"],
      ],
    );
    assert.deepEqual(spec.underlaySubnets, ["192.0.2.0/24", "2001:db8::/64"]);
  });

  it("BGP: no routes (BIRD distributes them)", () => {
    const { spec } = computeRouteIntent({
      node: "n3",
      underlay: { 4: "192.0.2.13" },
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
          underlay: { 4: "192.0.2.14" },
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
    const a = computeRouteIntent({ node: "n", underlay: { 4: "192.0.2.1" }, vtep, blocks });
    const b = computeRouteIntent({
      node: "n",
      underlay: { 4: "192.0.2.1" },
      vtep,
      blocks: [...blocks].reverse(),
    });
    assert.deepEqual(a, b);
  });
});

describe("the underlay addresses of an intent", () => {
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

  it("a comma-separated dual-stack annotation: IPv4 for the FDB, IPv6 beside it", () => {
    const d = desiredIntent("n1", node("fd00::11,192.0.2.11", "fd00::99", "192.0.2.99"), [vxlanBlock], pools);
    assert.ok("spec" in d, JSON.stringify(d));
    assert.equal(d.spec.underlayIP, "192.0.2.11");
    assert.equal(d.spec.underlayIPv6, "fd00::11");
    assert.deepEqual(
      d.spec.fdb.map((f) => f.dst),
      ["192.0.2.11"],
    );
    assert.deepEqual(d.leftOut, []);
  });

  it("an IPv6 host-gw block routes via the IPv6 underlay address", () => {
    const d = desiredIntent("n1", node("192.0.2.11, fd00::11"), [block("fd00:10:244::/122", "v6")], pools);
    assert.ok("spec" in d);
    assert.deepEqual(d.spec.routes, [{ dst: "fd00:10:244::/122", gateway: "fd00::11" }]);
    const v4only = desiredIntent("n1", node("192.0.2.11"), [block("fd00:10:244::/122", "v6")], pools);
    assert.ok("spec" in v4only);
    assert.deepEqual(v4only.spec.routes, [], "never an IPv6 route via an IPv4 next hop");
    assert.match(
      v4only.leftOut[0] ?? "",
      /IPAMBlock fd00:10:244::\/122 \(pool v6\).*no IPv6 underlay address/,
    );
  });

  it("a garbled annotation is a condition naming it, never half read", () => {
    for (const bad of ["192.0.2.7,banana", "192.0.2.7,192.0.2.8", "192.0.2.7/24", "nonsense"]) {
      const d = desiredIntent("n1", node(bad, "192.0.2.99", "fd00::99"), [vxlanBlock], pools);
      assert.ok("wait" in d, bad);
      assert.equal(d.wait.reason, "InvalidUnderlayAddress", bad);
      assert.match(d.wait.message, /weft\.dev\/underlay-ip: /, bad);
    }
    const none = desiredIntent("n1", node(""), [vxlanBlock], pools);
    assert.ok("wait" in none);
    assert.equal(none.wait.reason, "NoUnderlayAddress");
  });

  it("subnets: the reported interface address that is the underlay address, masked, per family", () => {
    const u = { 4: "192.0.2.7", 6: "2001:db8::7" };
    assert.deepEqual(underlaySubnets(u, ["10.0.0.1/8", "192.0.2.7/24", "2001:db8::7/64", "fe80::1/64"]), [
      "192.0.2.0/24",
      "2001:db8::/64",
    ]);
    assert.deepEqual(underlaySubnets(u, undefined), []);
  });

  it("Flannel profile: the device, VNI and port of the profile, and the MAC the adopted lease named", () => {
    const adopted: IPAMBlock = {
      ...vxlanBlock,
      metadata: { name: "b", annotations: { "weft.dev/vtep-mac": "c6:d2:32:6f:8f:44" } },
    };
    const flannel = { vxlan: () => ({ vni: 1, port: 8472, device: "flannel.1" }) };
    const d = desiredIntent("n1", node("", "192.0.2.11"), [adopted], pools, { flannel });
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
