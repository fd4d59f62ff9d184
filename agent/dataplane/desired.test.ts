import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { RouteIntentSpec } from "../../api/routeintent.js";
import { computeDesired } from "./desired.js";

const DEV = "weft.vxlan";

function vxlanIntent(node: string, n: number, blocks = [`10.244.${n}.0/26`]): RouteIntentSpec {
  const vtep = `10.244.${n}.0`;
  const mac = `02:00:00:00:00:${n.toString(16).padStart(2, "0")}`;
  const underlayIP = `192.168.0.${n}`;
  return {
    node,
    underlayIP,
    encapsulation: "VXLAN",
    vtep: { ip: vtep, mac, vni: 4096, port: 4789 },
    routes: blocks.map((dst) => ({ dst, gateway: vtep, device: DEV, onlink: true })),
    neighbors: [{ ip: vtep, mac, device: DEV }],
    fdb: [{ mac, dst: underlayIP, device: DEV }],
  };
}

function hostGWIntent(node: string, n: number): RouteIntentSpec {
  return {
    node,
    underlayIP: `192.168.0.${n}`,
    encapsulation: "HostGW",
    routes: [{ dst: `10.244.${n}.0/26`, gateway: `192.168.0.${n}` }],
    neighbors: [],
    fdb: [],
  };
}

describe("computeDesired", () => {
  it("VXLAN: one route, one neighbor, one FDB entry per other node; blackholes for own blocks", () => {
    const { desired, problems } = computeDesired({
      node: "a",
      intents: [vxlanIntent("c", 3), vxlanIntent("a", 1), vxlanIntent("b", 2)],
      ownBlocks: ["10.244.1.0/26"],
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(desired.vxlan, {
      name: DEV,
      vni: 4096,
      port: 4789,
      localIP: "192.168.0.1",
      mac: "02:00:00:00:00:01",
      addresses: ["10.244.1.0/32"],
    });
    assert.deepEqual(desired.routes, [
      { dst: "10.244.1.0/26", type: "blackhole" },
      { dst: "10.244.2.0/26", type: "unicast", gateway: "10.244.2.0", device: DEV, onlink: true },
      { dst: "10.244.3.0/26", type: "unicast", gateway: "10.244.3.0", device: DEV, onlink: true },
    ]);
    assert.deepEqual(desired.neighbors, [
      { ip: "10.244.2.0", mac: "02:00:00:00:00:02", device: DEV },
      { ip: "10.244.3.0", mac: "02:00:00:00:00:03", device: DEV },
    ]);
    assert.deepEqual(desired.fdb, [
      { mac: "02:00:00:00:00:02", dst: "192.168.0.2", device: DEV },
      { mac: "02:00:00:00:00:03", dst: "192.168.0.3", device: DEV },
    ]);
  });

  it("dual stack over VXLAN: IPv6 routes via the IPv6 VTEP with an NDP entry, same device, MAC and FDB", () => {
    const dual = (node: string, n: number): RouteIntentSpec => {
      const base = vxlanIntent(node, n);
      const v6 = `fd00:10:244:${n}::`;
      return {
        ...base,
        vtep: { ...base.vtep!, ipv6: v6 },
        routes: [...base.routes, { dst: `${v6}/122`, gateway: v6, device: DEV, onlink: true }],
        neighbors: [...base.neighbors, { ip: v6, mac: base.vtep!.mac, device: DEV }],
      };
    };
    const { desired, problems } = computeDesired({ node: "a", intents: [dual("a", 1), dual("b", 2)] });
    assert.deepEqual(problems, []);
    assert.deepEqual(desired.vxlan?.addresses, ["10.244.1.0/32", "fd00:10:244:1::/128"]);
    assert.deepEqual(desired.routes, [
      { dst: "10.244.2.0/26", type: "unicast", gateway: "10.244.2.0", device: DEV, onlink: true },
      { dst: "fd00:10:244:2::/122", type: "unicast", gateway: "fd00:10:244:2::", device: DEV, onlink: true },
    ]);
    assert.deepEqual(
      desired.neighbors.map((n) => `${n.ip} ${n.mac}`),
      ["10.244.2.0 02:00:00:00:00:02", "fd00:10:244:2:: 02:00:00:00:00:02"],
    );
    assert.deepEqual(desired.fdb, [{ mac: "02:00:00:00:00:02", dst: "192.168.0.2", device: DEV }]);
  });

  it("refuses a route that mixes families, naming the intent; its other routes still apply", () => {
    const bad = vxlanIntent("b", 2);
    bad.routes.push({ dst: "fd00:10:244:2::/122", gateway: "10.244.2.0", device: DEV, onlink: true });
    const { desired, problems } = computeDesired({ node: "a", intents: [vxlanIntent("a", 1), bad] });
    assert.deepEqual(
      desired.routes.map((r) => r.dst),
      ["10.244.2.0/26"],
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^RouteIntent b: route .*fd00:10:244:2::\/122.*different families/);
  });

  it("CrossSubnet: a peer on this node's underlay subnet directly, others through VXLAN", () => {
    const cross = (node: string, n: number, underlayIP: string): RouteIntentSpec => {
      const base = vxlanIntent(node, n);
      return {
        ...base,
        underlayIP,
        routes: base.routes.map((r) => ({ ...r, direct: underlayIP })),
        fdb: [{ ...base.fdb[0]!, dst: underlayIP }],
      };
    };
    const intents = [cross("a", 1, "192.0.2.11"), cross("b", 2, "192.0.2.12"), cross("c", 3, "203.0.113.13")];
    const { desired, problems } = computeDesired({
      node: "a",
      intents,
      underlaySubnets: ["192.0.2.11/24"],
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(desired.routes, [
      { dst: "10.244.2.0/26", type: "unicast", gateway: "192.0.2.12" },
      { dst: "10.244.3.0/26", type: "unicast", gateway: "10.244.3.0", device: DEV, onlink: true },
    ]);
    // without knowing its own subnet a node takes the tunnel, which always works
    const unknown = computeDesired({ node: "a", intents });
    assert.ok(unknown.desired.routes.every((r) => r.device === DEV));
  });

  it("host-gw: routes via the underlay, and no VXLAN device", () => {
    const { desired, problems } = computeDesired({
      node: "a",
      intents: [hostGWIntent("a", 1), hostGWIntent("b", 2)],
    });
    assert.deepEqual(problems, []);
    assert.equal(desired.vxlan, undefined);
    assert.deepEqual(desired.routes, [{ dst: "10.244.2.0/26", type: "unicast", gateway: "192.168.0.2" }]);
    assert.deepEqual(desired.neighbors, []);
  });

  it("the VXLAN device follows the overrides (flannel profile) and the given underlay IP", () => {
    const { desired } = computeDesired({
      node: "a",
      intents: [vxlanIntent("b", 2)],
      underlayIP: "192.168.0.1",
      vxlan: { name: "flannel.1", vni: 1, port: 8472, mtu: 1400 },
    });
    assert.equal(desired.vxlan?.name, "flannel.1");
    assert.equal(desired.vxlan?.vni, 1);
    assert.equal(desired.vxlan?.port, 8472);
    assert.equal(desired.vxlan?.mtu, 1400);
    // the remote's entries name weft.vxlan, not the device in use here
    assert.deepEqual(desired.neighbors, []);
  });

  it("BGP intents are left to BIRD; IPIP is reported as unsupported, not a crash", () => {
    const bgp: RouteIntentSpec = { ...hostGWIntent("b", 2), encapsulation: "BGP" };
    const ipip: RouteIntentSpec = { ...hostGWIntent("c", 3), encapsulation: "IPIP" };
    const { desired, problems } = computeDesired({ node: "a", intents: [bgp, ipip] });
    assert.deepEqual(desired.routes, []);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /c: IPIP is not supported/);
  });

  it("VXLAN without any underlay IP for this node is a problem, not a half-built device", () => {
    const { desired, problems } = computeDesired({ node: "a", intents: [vxlanIntent("b", 2)] });
    assert.equal(desired.vxlan, undefined);
    assert.deepEqual(desired.routes, []);
    assert.ok(problems.some((p) => /no underlay IP/.test(p)));
  });

  it("conflicts: own blocks win, then the first node by name; each loser is reported", () => {
    const b = vxlanIntent("b", 2, ["10.244.2.0/26", "10.244.1.0/26"]);
    const c = vxlanIntent("c", 3, ["10.244.3.0/26", "10.244.2.0/26"]);
    const { desired, problems } = computeDesired({
      node: "a",
      intents: [c, b, vxlanIntent("a", 1)],
      ownBlocks: ["10.244.1.0/26"],
    });
    assert.deepEqual(
      desired.routes.map((r) => [r.dst, r.gateway ?? r.type]),
      [
        ["10.244.1.0/26", "blackhole"],
        ["10.244.2.0/26", "10.244.2.0"],
        ["10.244.3.0/26", "10.244.3.0"],
      ],
    );
    assert.equal(problems.length, 2);
    assert.match(problems[0]!, /b: route 10.244.1.0\/26 is already claimed by this node's block/);
    assert.match(problems[1]!, /c: route 10.244.2.0\/26 is already claimed by RouteIntent b/);
  });

  it("invalid entries are reported and skipped; the rest of the intent still applies", () => {
    const bad = vxlanIntent("b", 2);
    bad.routes.push({ dst: "10.244.9.1/26", gateway: "10.244.2.0", device: DEV, onlink: true });
    bad.routes.push({ dst: "10.244.8.0/26", gateway: "fd00::1", device: DEV });
    bad.neighbors.push({ ip: "10.244.2.1", mac: "zz", device: DEV });
    bad.fdb.push({ mac: "02:00:00:00:00:09", dst: "not-an-ip", device: DEV });
    const { desired, problems } = computeDesired({ node: "a", intents: [bad], underlayIP: "192.168.0.1" });
    assert.equal(desired.routes.length, 1);
    assert.equal(desired.neighbors.length, 1);
    assert.equal(desired.fdb.length, 1);
    assert.equal(problems.length, 4);
  });

  it("canonicalises addresses and MACs (upper case, IPv6 forms)", () => {
    const i: RouteIntentSpec = {
      node: "b",
      underlayIP: "fd00:0:0::2",
      encapsulation: "VXLAN",
      vtep: { ip: "fd10::2", mac: "02:AA:00:00:00:02", vni: 4096, port: 4789 },
      routes: [{ dst: "FD10:0:0:2::/64", gateway: "fd10:0::2", device: DEV, onlink: true }],
      neighbors: [{ ip: "FD10::2", mac: "02:AA:00:00:00:02", device: DEV }],
      fdb: [{ mac: "02:AA:00:00:00:02", dst: "FD00::2", device: DEV }],
    };
    const { desired } = computeDesired({ node: "a", intents: [i], underlayIP: "fd00::1" });
    assert.deepEqual(desired.routes[0], {
      dst: "fd10:0:0:2::/64",
      type: "unicast",
      gateway: "fd10::2",
      device: DEV,
      onlink: true,
    });
    assert.deepEqual(desired.neighbors[0], { ip: "fd10::2", mac: "02:aa:00:00:00:02", device: DEV });
    assert.deepEqual(desired.fdb[0], { mac: "02:aa:00:00:00:02", dst: "fd00::2", device: DEV });
  });

  it("does not depend on the order intents arrive in", () => {
    const intents = [
      vxlanIntent("a", 1),
      vxlanIntent("b", 2, ["10.244.2.0/26", "10.244.7.0/26"]),
      vxlanIntent("c", 3, ["10.244.3.0/26", "10.244.7.0/26"]),
      vxlanIntent("d", 4),
    ];
    const ref = computeDesired({ node: "a", intents });
    fc.assert(
      fc.property(fc.shuffledSubarray(intents, { minLength: intents.length }), (shuffled) => {
        assert.deepEqual(computeDesired({ node: "a", intents: shuffled }), ref);
      }),
    );
  });
});
