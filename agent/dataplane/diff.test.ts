import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { LinkInfo, NeighborInfo, RouteInfo } from "../../netlink/decode.js";
import { recordApplied } from "./apply.js";
import { indexDesired, keepOf } from "./desired.js";
import { diff, fdbRemoteInSync, neighborInSync, routeInSync } from "./diff.js";
import {
  type DesiredState,
  emptyObserved,
  fdbKey,
  neighborKey,
  type ObservedState,
  routeKey,
} from "./model.js";
import { buildObserved, classifyFdb, classifyRoute } from "./observe.js";
import { planAddresses, planVxlan } from "./vxlan.js";

const DEV = "weft.vxlan";

function desiredFor(nodes: number[]): DesiredState {
  return {
    routes: nodes.map((n) => ({
      dst: `10.244.${n}.0/26`,
      type: "unicast" as const,
      gateway: `10.244.${n}.0`,
      device: DEV,
      onlink: true,
    })),
    neighbors: nodes.map((n) => ({ ip: `10.244.${n}.0`, mac: mac(n), device: DEV })),
    fdb: nodes.map((n) => ({ mac: mac(n), dst: `192.168.0.${n}`, device: DEV })),
  };
}
const mac = (n: number) => `02:00:00:00:00:${n.toString(16).padStart(2, "0")}`;

function observedOf(d: DesiredState): ObservedState {
  const o = emptyObserved();
  for (const r of d.routes) o.routes.set(routeKey(r.dst), r);
  for (const n of d.neighbors) o.neighbors.set(neighborKey(n.device, n.ip), { ...n, permanent: true });
  for (const f of d.fdb) o.fdb.set(fdbKey(f.device, f.mac, f.dst), f);
  return o;
}

const kinds = (p: ReturnType<typeof diff>) => p.actions.map((a) => `${a.op} ${a.kind}`);

describe("diff", () => {
  it("from nothing: neighbors, then FDB, then routes", () => {
    const plan = diff(indexDesired(desiredFor([2, 3])), emptyObserved());
    assert.deepEqual(kinds(plan), [
      "set neighbor",
      "set neighbor",
      "set fdb",
      "set fdb",
      "set route",
      "set route",
    ]);
  });

  it("nothing to do when the kernel already matches", () => {
    const d = desiredFor([2, 3, 4]);
    assert.deepEqual(diff(indexDesired(d), observedOf(d)).actions, []);
  });

  it("removing a node: its route, FDB entry and neighbor go, in that order, after the sets", () => {
    const plan = diff(indexDesired(desiredFor([2, 5])), observedOf(desiredFor([2, 3])));
    assert.deepEqual(kinds(plan), [
      "set neighbor",
      "set fdb",
      "set route",
      "del route",
      "del fdb",
      "del neighbor",
    ]);
    assert.deepEqual(
      plan.actions.filter((a) => a.op === "del").map((a) => JSON.stringify(a.entry)),
      [
        JSON.stringify(desiredFor([3]).routes[0]),
        JSON.stringify(desiredFor([3]).fdb[0]),
        JSON.stringify(desiredFor([3]).neighbors[0]),
      ],
    );
  });

  it("a changed next hop, MAC or underlay IP is replaced in place", () => {
    const want = desiredFor([2]);
    const have = observedOf(desiredFor([2]));
    want.routes[0]!.gateway = "10.244.2.1";
    want.neighbors[0]!.mac = "02:00:00:00:00:ff";
    want.fdb[0]!.dst = "192.168.0.99";
    const plan = diff(indexDesired(want), have);
    assert.deepEqual(kinds(plan), ["set neighbor", "set fdb", "set route", "del fdb"]);
    assert.equal((plan.actions[3]!.entry as { dst: string }).dst, "192.168.0.2");
  });

  it("a slot held by a foreign route is a conflict, never overwritten; foreign routes are never deleted", () => {
    const want = indexDesired(desiredFor([2]));
    const have = emptyObserved();
    have.foreignRoutes.add("10.244.2.0/26");
    have.foreignRoutes.add("0.0.0.0/0");
    const plan = diff(want, have);
    assert.deepEqual(kinds(plan), ["set neighbor", "set fdb"]);
    assert.equal(plan.conflicts.length, 1);
    assert.match(plan.conflicts[0]!, /10.244.2.0\/26/);
  });

  it("a foreign route identical to ours is taken over (flanneld's, after a switch-over); another is not", () => {
    const want = indexDesired(desiredFor([2, 3]));
    const have = emptyObserved();
    const [r2, r3] = desiredFor([2, 3]).routes;
    have.foreignRoutes.add(r2!.dst);
    have.foreignEntries.set(r2!.dst, { ...r2! });
    have.foreignRoutes.add(r3!.dst);
    have.foreignEntries.set(r3!.dst, { ...r3!, gateway: "10.244.3.1" });
    const plan = diff(want, have);
    assert.deepEqual(
      plan.actions
        .filter((a) => a.kind === "route")
        .map((a) => `${a.op} ${(a.entry as { dst: string }).dst}`),
      [`set ${r2!.dst}`],
    );
    assert.equal(plan.conflicts.length, 1);
    assert.match(plan.conflicts[0]!, /10\.244\.3\.0\/26/);
    assert.equal(routeInSync(want, have, r2!.dst), false, "to be taken over");
    assert.equal(routeInSync(want, have, r3!.dst), true, "a conflict is not drift");
  });

  it("unplanned entries of a node flanneld runs are kept; other unplanned entries go", () => {
    const flannel = desiredFor([7]);
    const want = indexDesired(desiredFor([2]));
    want.keep = keepOf([
      {
        node: "f",
        underlayIP: "192.168.0.7",
        encapsulation: "VXLAN",
        routes: [],
        neighbors: flannel.neighbors,
        fdb: flannel.fdb,
      },
    ]);
    const have = observedOf(desiredFor([2, 7, 8]));
    const plan = diff(want, have);
    assert.deepEqual(
      plan.actions.map((a) => `${a.op} ${a.kind} ${/:08|\.8\./.test(JSON.stringify(a.entry)) ? 8 : 7}`),
      ["del route 7", "del route 8", "del fdb 8", "del neighbor 8"],
    );
    const n7 = flannel.neighbors[0]!;
    assert.equal(neighborInSync(want, have, neighborKey(DEV, n7.ip)), true);
    assert.equal(fdbRemoteInSync(want, flannel.fdb[0]!, true), true);
    const moved = { ...flannel.fdb[0]!, dst: "192.168.0.99" };
    assert.equal(fdbRemoteInSync(want, moved, true), false, "only the lease's own remote is kept");
  });

  it("kernel-learned (non-permanent) neighbors are replaced when wanted and left alone otherwise", () => {
    const have = emptyObserved();
    have.neighbors.set(neighborKey(DEV, "10.244.2.0"), {
      ip: "10.244.2.0",
      mac: mac(2),
      device: DEV,
      permanent: false,
    });
    have.neighbors.set(neighborKey(DEV, "10.244.9.9"), {
      ip: "10.244.9.9",
      mac: mac(9),
      device: DEV,
      permanent: false,
    });
    const plan = diff(indexDesired({ routes: [], neighbors: desiredFor([2]).neighbors, fdb: [] }), have);
    assert.deepEqual(kinds(plan), ["set neighbor"]);
  });

  it("a MAC with several remotes keeps only the wanted one", () => {
    const have = observedOf(desiredFor([2]));
    have.fdb.set(fdbKey(DEV, mac(2), "192.168.0.77"), { mac: mac(2), dst: "192.168.0.77", device: DEV });
    const plan = diff(indexDesired(desiredFor([2])), have);
    assert.deepEqual(kinds(plan), ["del fdb"]);
  });

  it("host-gw routes match whatever device the kernel chose", () => {
    const want = indexDesired({
      routes: [{ dst: "10.244.2.0/26", type: "unicast", gateway: "192.168.0.2" }],
      neighbors: [],
      fdb: [],
    });
    const have = emptyObserved();
    have.routes.set("10.244.2.0/26", {
      dst: "10.244.2.0/26",
      type: "unicast",
      gateway: "192.168.0.2",
      device: "eth0",
    });
    assert.deepEqual(diff(want, have).actions, []);
  });

  it("applying the plan converges: a second diff is empty (any before/after)", () => {
    const nodes = fc.uniqueArray(fc.integer({ min: 2, max: 60 }), { maxLength: 20 });
    fc.assert(
      fc.property(nodes, nodes, fc.integer({ min: 0, max: 60 }), (before, after, changed) => {
        const have = observedOf(desiredFor(before));
        const want = desiredFor(after);
        for (const f of want.fdb) if (f.mac === mac(changed)) f.dst = "192.168.1.1";
        const idx = indexDesired(want);
        for (const a of diff(idx, have).actions) recordApplied(have, a);
        assert.deepEqual(diff(idx, have).actions, []);
        for (const k of idx.routes.keys()) assert.ok(routeInSync(idx, have, k));
        for (const k of idx.neighbors.keys()) assert.ok(neighborInSync(idx, have, k));
        for (const f of have.fdb.values()) assert.ok(fdbRemoteInSync(idx, f, true));
      }),
    );
  });
});

describe("drift checks for single events", () => {
  it("an owned route deleted by hand is drift; a deleted unwanted one is not", () => {
    const idx = indexDesired(desiredFor([2]));
    const have = observedOf(desiredFor([2]));
    have.routes.delete("10.244.2.0/26");
    assert.equal(routeInSync(idx, have, "10.244.2.0/26"), false);
    assert.equal(routeInSync(idx, have, "10.244.3.0/26"), true);
  });

  it("FDB remotes: removing the wanted one or adding another is drift", () => {
    const idx = indexDesired(desiredFor([2]));
    const f = desiredFor([2]).fdb[0]!;
    assert.equal(fdbRemoteInSync(idx, f, false), false);
    assert.equal(fdbRemoteInSync(idx, { ...f, dst: "192.168.0.50" }, true), false);
    assert.equal(fdbRemoteInSync(idx, { ...f, dst: "192.168.0.50" }, false), true);
  });
});

const route = (r: Partial<RouteInfo>): RouteInfo => ({
  family: 2,
  dst: "10.244.2.0/26",
  dstLen: 26,
  table: 254,
  protocol: 0x57,
  scope: 0,
  type: 1,
  flags: 0,
  onlink: false,
  priority: 0,
  ...r,
});

describe("observed state from kernel entries", () => {
  const names = new Map([
    [4, DEV],
    [2, "eth0"],
  ]);
  const managed = new Set([DEV]);

  it("routes: ours by protocol; others only occupy slots; other tables are ignored", () => {
    assert.deepEqual(classifyRoute(route({ gateway: "10.244.2.0", oif: 4, onlink: true }), names), {
      owned: true,
      key: "10.244.2.0/26",
      entry: { dst: "10.244.2.0/26", type: "unicast", gateway: "10.244.2.0", device: DEV, onlink: true },
    });
    assert.deepEqual(
      classifyRoute(route({ protocol: 4, gateway: "10.244.2.0", oif: 4, onlink: true }), names),
      {
        owned: false,
        key: "10.244.2.0/26",
        entry: { dst: "10.244.2.0/26", type: "unicast", gateway: "10.244.2.0", device: DEV, onlink: true },
      },
    );
    assert.equal(classifyRoute(route({ table: 255 }), names), undefined);
    assert.equal(classifyRoute(route({ type: 6 }), names)?.owned && "blackhole", "blackhole");
  });

  it("IPv6 routes stored with the default metric 1024 keep the metric-0 key", () => {
    const c = classifyRoute(route({ family: 10, dst: "fd10::/64", dstLen: 64, priority: 1024 }), names);
    assert.equal(c?.key, "fd10::/64");
    const d = classifyRoute(route({ family: 10, dst: "fd10::/64", dstLen: 64, priority: 5 }), names);
    assert.equal(d?.key, "fd10::/64 metric 5");
  });

  it("FDB: permanent NTF_SELF entries with a remote on a managed device only", () => {
    const f = (x: Partial<NeighborInfo>): NeighborInfo => ({
      family: 7,
      ifindex: 4,
      state: 0xc0,
      flags: 2,
      ip: "192.168.0.2",
      mac: mac(2),
      bridge: true,
      ...x,
    });
    assert.ok(classifyFdb(f({}), names, managed));
    assert.equal(classifyFdb(f({ flags: 4 }), names, managed), undefined);
    assert.equal(classifyFdb(f({ state: 2 }), names, managed), undefined);
    assert.equal(classifyFdb(f({ ifindex: 2 }), names, managed), undefined);
    assert.equal(classifyFdb(f({ ip: undefined }), names, managed), undefined);
  });

  it("buildObserved puts each entry where it belongs", () => {
    const o = buildObserved(
      [route({ gateway: "10.244.2.0", oif: 4, onlink: true }), route({ dst: "0.0.0.0/0", protocol: 3 })],
      [
        { family: 2, ifindex: 4, state: 0x80, flags: 0, ip: "10.244.2.0", mac: mac(2), bridge: false },
        { family: 2, ifindex: 2, state: 0x80, flags: 0, ip: "192.168.0.1", mac: mac(1), bridge: false },
      ],
      [],
      names,
      managed,
    );
    assert.equal(o.routes.size, 1);
    assert.deepEqual([...o.foreignRoutes], ["0.0.0.0/0"]);
    assert.deepEqual([...o.neighbors.keys()], [`${DEV} 10.244.2.0`]);
  });
});

describe("VXLAN device plan", () => {
  const cfg = { name: DEV, vni: 4096, port: 4789, localIP: "192.168.0.1", mac: "02:00:00:00:00:01" };
  const underlay = { index: 2, name: "eth0", mtu: 1500 };
  const link = (x: Partial<LinkInfo> = {}): LinkInfo => ({
    index: 4,
    flags: 1,
    up: true,
    name: DEV,
    mtu: 1450,
    mac: "02:00:00:00:00:01",
    kind: "vxlan",
    vxlan: { vni: 4096, port: 4789, local: "192.168.0.1", link: 2, learning: false },
    ...x,
  });

  it("creates a missing device with MTU = underlay - 50, learning off, up", () => {
    const p = planVxlan(cfg, undefined, underlay);
    assert.equal(p.op, "create");
    assert.deepEqual(p.op === "create" && p.spec, {
      name: DEV,
      vni: 4096,
      port: 4789,
      local: "192.168.0.1",
      link: 2,
      learning: false,
      mtu: 1450,
      up: true,
      mac: "02:00:00:00:00:01",
    });
  });

  it("leaves a matching device alone; fixes MTU, MAC and down in place", () => {
    assert.deepEqual(planVxlan(cfg, link(), underlay), { op: "none" });
    const p = planVxlan({ ...cfg, mtu: 1400 }, link({ up: false, mac: "02:00:00:00:00:99" }), underlay);
    assert.deepEqual(p, {
      op: "update",
      reason: "down -> up, mtu 1450 -> 1400, mac 02:00:00:00:00:99 -> 02:00:00:00:00:01",
      change: { index: 4, up: true, mtu: 1400, mac: "02:00:00:00:00:01" },
    });
  });

  it("recreates when a creation-time attribute differs", () => {
    for (const v of [{ vni: 1 }, { port: 8472 }, { local: "192.168.0.9" }, { learning: true }, { link: 3 }]) {
      const l = link();
      l.vxlan = { ...l.vxlan!, ...v };
      assert.equal(planVxlan(cfg, l, underlay).op, "recreate", JSON.stringify(v));
    }
    assert.equal(planVxlan(cfg, link({ kind: "veth", vxlan: undefined }), underlay).op, "recreate");
  });

  it("keeps exactly the VTEP address among the device's global addresses", () => {
    const a = (cidr: string, scope = 0) => ({
      family: 2,
      prefixLen: 32,
      index: 4,
      scope,
      cidr,
      ip: cidr.split("/")[0]!,
    });
    assert.deepEqual(planAddresses(["10.244.1.0/32"], []), { add: ["10.244.1.0/32"], del: [] });
    assert.deepEqual(planAddresses(["10.244.1.0/32"], [a("10.244.1.0/32"), a("fe80::1/64", 253)]), {
      add: [],
      del: [],
    });
    assert.deepEqual(planAddresses(["10.244.1.0/32"], [a("10.9.9.9/32")]), {
      add: ["10.244.1.0/32"],
      del: ["10.9.9.9/32"],
    });
  });

  it("keeps one VTEP address per family: an IPv6 one beside the IPv4 one", () => {
    const a = (cidr: string) => ({
      family: 10,
      prefixLen: 128,
      index: 4,
      scope: 0,
      cidr,
      ip: cidr.split("/")[0]!,
    });
    const want = ["10.244.1.0/32", "fd00:10:244::/128"];
    assert.deepEqual(planAddresses(want, [a("10.244.1.0/32")]), { add: ["fd00:10:244::/128"], del: [] });
    assert.deepEqual(planAddresses(["10.244.1.0/32"], [a("10.244.1.0/32"), a("fd00:10:244::/128")]), {
      add: [],
      del: ["fd00:10:244::/128"],
    });
  });
});
