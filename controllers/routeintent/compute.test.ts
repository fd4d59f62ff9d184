import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { computeRouteIntent, underlayIPOf } from "./compute.js";
import { VXLAN_DEVICE, vtepMAC } from "./vtep.js";

describe("vtepMAC", () => {
  it("is stable, unicast and locally administered", () => {
    const a = vtepMAC("node-a");
    assert.equal(a, vtepMAC("node-a"));
    assert.match(a, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    const first = Number.parseInt(a.slice(0, 2), 16);
    assert.equal(first & 0x01, 0, "multicast bit clear");
    assert.equal(first & 0x02, 0x02, "locally administered bit set");
  });
  it("differs between nodes", () => {
    const macs = new Set(Array.from({ length: 1000 }, (_, i) => vtepMAC(`node-${i}`)));
    assert.equal(macs.size, 1000);
  });
});

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

describe("underlayIPOf", () => {
  it("prefers the annotation over the InternalIP", () => {
    const node = {
      metadata: { annotations: { "weft.dev/underlay-ip": "198.51.100.7" } },
      status: { addresses: [{ type: "InternalIP", address: "192.0.2.7" }] },
    };
    assert.equal(underlayIPOf(node), "198.51.100.7");
    assert.equal(underlayIPOf({ status: node.status }), "192.0.2.7");
    assert.equal(underlayIPOf({ status: { addresses: [{ type: "Hostname", address: "x" }] } }), undefined);
  });
});
