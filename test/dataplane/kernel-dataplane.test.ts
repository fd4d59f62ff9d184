/**
 * KernelDataplane against a real kernel in network namespaces. Every expectation is read back with
 * iproute2 (`ip -json`, `bridge -json`), never with the agent's own netlink reads.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { computeDesired } from "../../agent/dataplane/desired.js";
import type { ApplyResult, DataplaneStatus } from "../../agent/dataplane/kernel.js";
import type { DesiredState } from "../../agent/dataplane/model.js";
import type { RouteIntentSpec } from "../../api/routeintent.js";
import {
  Driver,
  eventually,
  linkNamespaces,
  Netns,
  requireRootAndIproute2,
} from "../../devenv/kernel-netns.js";
import { sh } from "../../devenv/procs.js";

const DEV = "weft.vxlan";
const mac = (n: number) => `02:00:00:00:00:${n.toString(16).padStart(2, "0")}`;

/** What the controller publishes for a VXLAN node n (underlay 192.168.77.n, block 10.244.n.0/26). */
function intent(n: number, over: Partial<{ mac: string; underlay: string }> = {}): RouteIntentSpec {
  const vtep = `10.244.${n}.0`;
  const m = over.mac ?? mac(n);
  const underlayIP = over.underlay ?? `192.168.77.${n}`;
  return {
    node: `node-${n}`,
    underlayIP,
    encapsulation: "VXLAN",
    vtep: { ip: vtep, mac: m, vni: 4096, port: 4789 },
    routes: [{ dst: `10.244.${n}.0/26`, gateway: vtep, device: DEV, onlink: true }],
    neighbors: [{ ip: vtep, mac: m, device: DEV }],
    fdb: [{ mac: m, dst: underlayIP, device: DEV }],
  };
}

/** Node 3 after it moved: a new VTEP MAC and a new underlay address. */
const NODE3_MOVED = { mac: mac(0x33), underlay: "192.168.77.133" };

/** The cluster of nodes 1-4 after a change: node 3 moved, node 4 left, node 5 joined. */
const afterChange = () => [intent(1), intent(2), intent(3, NODE3_MOVED), intent(5)];

function desiredFor(self: number, intents: RouteIntentSpec[]): DesiredState {
  const r = computeDesired({ node: `node-${self}`, intents, ownBlocks: [`10.244.${self}.0/26`] });
  assert.deepEqual(r.problems, []);
  return r.desired;
}

/** The exact kernel entries Weft should own on node 1 when the others are `remotes`. */
function expected(remotes: Array<{ n: number; mac?: string; underlay?: string }>) {
  return {
    routes: [
      "blackhole 10.244.1.0/26",
      ...remotes.map(({ n }) => `10.244.${n}.0/26 via 10.244.${n}.0 dev ${DEV} onlink`),
    ].sort(),
    neighbors: remotes.map(({ n, mac: m }) => `10.244.${n}.0 ${m ?? mac(n)} PERMANENT`).sort(),
    fdb: remotes
      .map(({ n, mac: m, underlay }) => `${m ?? mac(n)} ${underlay ?? `192.168.77.${n}`} self,permanent`)
      .sort(),
  };
}

function kernelOf(ns: Netns) {
  return { routes: ns.ownedRoutes(), neighbors: ns.neighbors(DEV), fdb: ns.fdb(DEV) };
}

/**
 * Every owned gateway route points at an owned nexthop object with its gateway, and there is no
 * other owned nexthop: one per gateway, none left over.
 */
function assertNexthops(ns: Netns): void {
  const byDst = ns.routeNexthops();
  const gateways = ns
    .json<{ dst: string; gateway?: string; nhid?: number }>("route", "show", "proto", "87")
    .filter((r) => r.gateway);
  for (const r of gateways) assert.ok(byDst.has(r.dst), `route ${r.dst} uses a nexthop object`);
  const want = [...new Map(gateways.map((r) => [r.nhid!, r.gateway!])).entries()]
    .map(([id, gw]) => `id ${id} via ${gw} dev ${DEV} onlink`)
    .sort();
  assert.deepEqual(ns.ownedNexthops(), want);
}

describe("kernel dataplane in a network namespace", { concurrency: false }, () => {
  let ns: Netns;
  let drv: Driver | undefined;
  const drivers: Driver[] = [];
  const start = async (desired: DesiredState) => {
    const d = new Driver(ns);
    drivers.push(d);
    drv = d;
    const res = await d.call<ApplyResult>("start", { desired, options: { repairDelayMs: 50 } });
    return res;
  };

  before(() => {
    requireRootAndIproute2();
    ns = new Netns("dp");
    // the node's underlay: one end of a veth pair holding 192.168.77.1
    ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1");
    ns.ip("addr", "add", "192.168.77.1/24", "dev", "u0");
    ns.ip("link", "set", "u0", "up");
    ns.ip("link", "set", "u1", "up");
    // foreign entries that must survive everything
    ns.ip("route", "add", "10.99.0.0/24", "via", "192.168.77.200", "proto", "static");
    ns.ip("route", "add", "10.98.0.0/24", "dev", "u0", "proto", "boot");
  });

  after(async () => {
    for (const d of drivers) await d.stop().catch(() => d.kill());
    ns?.delete();
  });

  it("programs intents: exactly the expected device, routes, neighbors and FDB entries", async () => {
    const intents = [intent(1), intent(2), intent(3), intent(4)];
    const res = await start(desiredFor(1, intents));
    assert.deepEqual(res.failed, []);
    assert.deepEqual(kernelOf(ns), expected([{ n: 2 }, { n: 3 }, { n: 4 }]));

    const [link] = ns.json<{
      mtu: number;
      address: string;
      flags: string[];
      linkinfo: { info_kind: string; info_data: Record<string, unknown> };
    }>("-d", "link", "show", DEV);
    assert.ok(link);
    assert.equal(link.mtu, 1450, "underlay MTU 1500 - 50");
    assert.equal(link.address, mac(1));
    assert.ok(link.flags.includes("UP"));
    assert.equal(link.linkinfo.info_kind, "vxlan");
    const d = link.linkinfo.info_data;
    assert.deepEqual([d.id, d.port, d.local, d.learning, d.link], [4096, 4789, "192.168.77.1", false, "u0"]);
    const addrs = ns.json<{ addr_info: Array<{ local: string; prefixlen: number }> }>(
      "addr",
      "show",
      "dev",
      DEV,
    );
    assert.deepEqual(
      addrs[0]!.addr_info.filter((a) => !a.local.startsWith("fe80")).map((a) => `${a.local}/${a.prefixlen}`),
      ["10.244.1.0/32"],
    );
    const st = await drv!.call<DataplaneStatus>("status");
    assert.deepEqual(st.owned, { routes: 4, neighbors: 3, fdb: 3 });
    assertNexthops(ns);
    assert.equal(ns.ownedNexthops().length, 3);
  });

  it("a changed, a removed and a new node converge to exactly the new entries", async () => {
    const intents = afterChange();
    const res = await drv!.call<ApplyResult>("set", { desired: desiredFor(1, intents) });
    assert.deepEqual(res.failed, []);
    assert.deepEqual(kernelOf(ns), expected([{ n: 2 }, { n: 3, ...NODE3_MOVED }, { n: 5 }]));
    assertNexthops(ns);
    const again = await drv!.call<ApplyResult>("set", { desired: desiredFor(1, intents) });
    assert.equal(again.actions, 0, "a second identical setDesired changes nothing");
  });

  it("owned entries deleted by hand come back (drift repair from netlink events)", async (t) => {
    const want = kernelOf(ns);
    const cases: Array<[string, () => void, () => boolean]> = [
      [
        "route",
        () => ns.ip("route", "del", "10.244.2.0/26"),
        () => ns.ownedRoutes().includes(`10.244.2.0/26 via 10.244.2.0 dev ${DEV} onlink`),
      ],
      [
        // the kernel drops the routes on a deleted nexthop object without telling anyone
        "nexthop object",
        () => ns.ip("nexthop", "del", "id", String(ns.routeNexthops().get("10.244.2.0/26"))),
        () => ns.ownedRoutes().includes(`10.244.2.0/26 via 10.244.2.0 dev ${DEV} onlink`),
      ],
      [
        "neighbor",
        () => ns.ip("neigh", "del", "10.244.2.0", "dev", DEV),
        () => ns.neighbors(DEV).includes(`10.244.2.0 ${mac(2)} PERMANENT`),
      ],
      [
        "fdb",
        () => sh("bridge", ["-n", ns.name, "fdb", "del", mac(2), "dev", DEV, "dst", "192.168.77.2", "self"]),
        () => ns.fdb(DEV).includes(`${mac(2)} 192.168.77.2 self,permanent`),
      ],
      [
        "changed neighbor MAC",
        () =>
          ns.ip(
            "neigh",
            "replace",
            "10.244.5.0",
            "lladdr",
            "02:de:ad:00:00:01",
            "dev",
            DEV,
            "nud",
            "permanent",
          ),
        () => ns.neighbors(DEV).includes(`10.244.5.0 ${mac(5)} PERMANENT`),
      ],
    ];
    for (const [what, breakIt, isBack] of cases) {
      assert.ok(isBack(), `${what} present before`);
      breakIt();
      const { ms } = await eventually(`${what} restored`, isBack);
      t.diagnostic(`${what} restored after ${ms.toFixed(0)} ms`);
    }
    assert.deepEqual(kernelOf(ns), want);
    assertNexthops(ns);
  });

  it("a device taken down (routes flushed silently by the kernel) is brought back with its routes", async (t) => {
    const want = kernelOf(ns);
    ns.ip("link", "set", DEV, "down");
    const { ms } = await eventually("routes back after link down", () => {
      const k = kernelOf(ns);
      return JSON.stringify(k) === JSON.stringify(want) || undefined;
    });
    t.diagnostic(`device up and routes restored after ${ms.toFixed(0)} ms`);
    const [link] = ns.json<{ flags: string[] }>("link", "show", DEV);
    assert.ok(link!.flags.includes("UP"));
  });

  it("foreign routes are untouched, and a foreign route in a wanted slot is reported, not replaced", async () => {
    ns.ip("route", "add", "10.244.7.0/26", "via", "192.168.77.250", "proto", "static");
    const intents = [...afterChange(), intent(7)];
    const res = await drv!.call<ApplyResult>("set", { desired: desiredFor(1, intents) });
    assert.equal(res.conflicts.length, 1);
    assert.match(res.conflicts[0]!, /10\.244\.7\.0\/26/);
    const all = ns.routes();
    for (const foreign of [
      "10.99.0.0/24 via 192.168.77.200 dev u0",
      "10.98.0.0/24 dev u0",
      "10.244.7.0/26 via 192.168.77.250 dev u0",
    ]) {
      assert.ok(all.includes(foreign), `${foreign} still there`);
    }
    // neighbor and FDB of node 7 are ours to program even though its route slot is taken
    assert.ok(ns.neighbors(DEV).includes(`10.244.7.0 ${mac(7)} PERMANENT`));
    ns.ip("route", "del", "10.244.7.0/26", "proto", "static");
  });

  it("a restart diffs instead of flushing: nothing is deleted, nothing re-added", async () => {
    // converge first (the previous test left node 7's slot free for us)
    await drv!.call<ApplyResult>("resync");
    const want = kernelOf(ns);
    const monitor = spawn("ip", ["-n", ns.name, "monitor", "route", "neigh"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    const seen: string[] = [];
    monitor.stdout.on("data", (d: Buffer) => seen.push(d.toString()));
    // A sentinel route the monitor must report: before the restart it proves the monitor listens,
    // after it that every event of the restart has been read (netlink delivers them in order).
    const SENTINEL = "198.18.0.";
    const sentinel = async (n: number) => {
      const route = ["blackhole", `${SENTINEL}${n}/32`, "proto", "static"];
      // added afresh each round: a monitor that subscribed late sees the next addition
      await eventually(`the monitor to report sentinel ${n}`, () => {
        if (seen.join("").includes(`${SENTINEL}${n}`)) return true;
        ns.ip("route", "replace", ...route);
        ns.ip("route", "del", ...route);
        return undefined;
      });
    };
    try {
      await sentinel(1);
      const d = drv!;
      await d.stop();
      const intents = [...afterChange(), intent(7)];
      const res = await start(desiredFor(1, intents));
      assert.equal(res.actions, 0, "restart applies nothing");
      assert.deepEqual(res.device, [], "the device is kept as it is");
      await sentinel(2);
    } finally {
      monitor.kill();
    }
    assert.deepEqual(kernelOf(ns), want);
    const events = seen
      .join("")
      .split("\n")
      .filter((line) => !line.includes(SENTINEL))
      .join("\n");
    assert.doesNotMatch(events, /Deleted/, `no deletions during the restart:\n${events}`);
    assert.doesNotMatch(events, /10\.244\./, `no changes to our entries during the restart:\n${events}`);
  });

  it("removing every intent removes every owned entry and nothing else", async () => {
    const res = await drv!.call<ApplyResult>("set", { desired: desiredFor(1, [intent(1)]) });
    assert.deepEqual(res.failed, []);
    assert.deepEqual(kernelOf(ns), expected([]));
    assert.deepEqual(ns.ownedNexthops(), [], "no nexthop object left behind");
    assert.ok(ns.routes().includes("10.99.0.0/24 via 192.168.77.200 dev u0"));
  });

  it("the agent's incremental path (a DesiredTracker): one intent changed, removed, added at a time", async () => {
    const tracker = { node: "node-1", ownBlocks: ["10.244.1.0/26"] };
    const call = (req: object) => drv!.call<ApplyResult>("intents", req);
    let res = await call({ tracker, upsert: [intent(1), intent(2), intent(3), intent(4)] });
    assert.deepEqual(res.failed, []);
    assert.deepEqual(kernelOf(ns), expected([{ n: 2 }, { n: 3 }, { n: 4 }]));
    res = await call({ upsert: [intent(3, NODE3_MOVED)] });
    assert.deepEqual(res.failed, []);
    assert.ok(res.actions > 0 && res.actions <= 3, `only node 3's entries were touched (${res.actions})`);
    assert.deepEqual(kernelOf(ns), expected([{ n: 2 }, { n: 3, ...NODE3_MOVED }, { n: 4 }]));
    res = await call({ remove: ["node-2"], upsert: [intent(6)] });
    assert.deepEqual(kernelOf(ns), expected([{ n: 3, ...NODE3_MOVED }, { n: 4 }, { n: 6 }]));
    assertNexthops(ns);
    // drift repair keeps working against the tracker's state
    ns.ip("route", "del", "10.244.6.0/26");
    await eventually("route restored", () =>
      ns.ownedRoutes().includes(`10.244.6.0/26 via 10.244.6.0 dev ${DEV} onlink`),
    );
    res = await call({ remove: ["node-3", "node-4", "node-6"] });
    assert.deepEqual(kernelOf(ns), expected([]));
    assert.deepEqual(ns.ownedNexthops(), []);
  });
});

describe("two nodes over a VXLAN underlay", { concurrency: false }, () => {
  let a: Netns;
  let b: Netns;
  const drivers: Driver[] = [];

  before(() => {
    requireRootAndIproute2();
    a = new Netns("va");
    b = new Netns("vb");
    linkNamespaces(a, "192.168.77.1/24", b, "192.168.77.2/24");
  });

  after(async () => {
    for (const d of drivers) await d.stop().catch(() => d.kill());
    a?.delete();
    b?.delete();
  });

  it("each node's VTEP answers pings from the other through the tunnel", async () => {
    const intents = [intent(1), intent(2)];
    for (const [ns, self] of [
      [a, 1],
      [b, 2],
    ] as const) {
      const d = new Driver(ns);
      drivers.push(d);
      const res = await d.call<ApplyResult>("start", { desired: desiredFor(self, intents) });
      assert.deepEqual(res.failed, []);
    }
    // a's VTEP address is the source: the packet goes out weft.vxlan, encapsulated to 192.168.77.2
    const out = pingFrom(a, "10.244.2.0");
    assert.match(out, /1 received/);
    const back = pingFrom(b, "10.244.1.0");
    assert.match(back, /1 received/);
  });
});

function pingFrom(ns: Netns, ip: string): string {
  try {
    return execFileSync("ip", ["netns", "exec", ns.name, "ping", "-c", "1", "-W", "2", ip], {
      encoding: "utf8",
    });
  } catch (err) {
    const e = err as { stdout?: string };
    return e.stdout ?? String(err);
  }
}
