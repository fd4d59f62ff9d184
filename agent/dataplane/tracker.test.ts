/**
 * The incremental path must be indistinguishable from the full one: a DesiredTracker fed intents
 * one at a time holds exactly what computeDesired computes from all of them, and diffing only the
 * keys it (and kernel drift) marked produces exactly the actions a full diff produces.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { RouteIntentSpec } from "../../api/routeintent.js";
import { recordApplied } from "./apply.js";
import { computeDesired, type DesiredIndex, indexDesired } from "./desired.js";
import { diff, diffKeys, fdbRemoteInSync, markDifference, neighborInSync, routeInSync } from "./diff.js";
import {
  type Action,
  describeAction,
  emptyObserved,
  type FdbEntry,
  fdbMacKey,
  forgetFdb,
  neighborKey,
  type ObservedState,
  observeFdb,
} from "./model.js";
import { type DesiredChanges, DesiredTracker, emptyChanges } from "./tracker.js";

const DEV = "weft.vxlan";
const SELF = "n2";
const NODES = ["n0", "n1", "n2", "n3", "n4", "n5", "n6"];

// small pools, so that intents collide on keys and every conflict rule is exercised
const dsts = ["10.244.0.0/26", "10.244.1.0/26", "10.244.2.0/26", "10.244.3.0/26", "10.244.1.1/26", "nope"];
const ips = ["10.244.0.0", "10.244.1.0", "10.244.2.0", "192.168.0.7", "fd00::1", "bad-ip"];
const macs = ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03", "02:00:00:00:00:0A", "zz"];
const unders = ["192.168.0.1", "192.168.0.2", "192.168.0.3"];
const devices = [DEV, DEV, DEV, "eth0"];

const arbRoute = fc.record(
  {
    dst: fc.constantFrom(...dsts),
    gateway: fc.constantFrom(...ips),
    device: fc.constantFrom(...devices),
    onlink: fc.boolean(),
  },
  { requiredKeys: ["dst"] },
);
const arbIntent = (node: string): fc.Arbitrary<RouteIntentSpec> =>
  fc.record({
    node: fc.constant(node),
    underlayIP: fc.constantFrom(...unders),
    encapsulation: fc.constantFrom("VXLAN", "VXLAN", "VXLAN", "HostGW", "BGP", "IPIP"),
    vtep: fc.record({
      ip: fc.constantFrom(...ips.slice(0, 3)),
      mac: fc.constantFrom(...macs),
      vni: fc.constantFrom(4096, 1),
      port: fc.constantFrom(4789, 8472),
    }),
    routes: fc.array(arbRoute, { maxLength: 3 }),
    neighbors: fc.array(
      fc.record({
        ip: fc.constantFrom(...ips),
        mac: fc.constantFrom(...macs),
        device: fc.constantFrom(...devices),
      }),
      { maxLength: 2 },
    ),
    fdb: fc.array(
      fc.record({
        mac: fc.constantFrom(...macs),
        dst: fc.constantFrom(...unders),
        device: fc.constantFrom(...devices),
      }),
      { maxLength: 2 },
    ),
  }) as fc.Arbitrary<RouteIntentSpec>;

type Op =
  | { op: "upsert"; spec: RouteIntentSpec }
  | { op: "remove"; node: string }
  | { op: "blocks"; blocks: string[] }
  | { op: "options"; ipip: boolean; underlay: boolean };

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .constantFrom(...NODES)
      .chain((n) => arbIntent(n).map((spec) => ({ op: "upsert" as const, spec }))),
  },
  { weight: 2, arbitrary: fc.constantFrom(...NODES).map((node) => ({ op: "remove" as const, node })) },
  {
    weight: 1,
    arbitrary: fc.subarray(dsts, { maxLength: 2 }).map((blocks) => ({ op: "blocks" as const, blocks })),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("options" as const), ipip: fc.boolean(), underlay: fc.boolean() }),
  },
);

/** The tracker and a plain record of the same input, for computeDesired. */
class Both {
  readonly tracker = new DesiredTracker({ node: SELF });
  intents = new Map<string, RouteIntentSpec>();
  blocks: string[] = [];
  ipip = false;
  underlay: string | undefined;

  apply(o: Op): void {
    switch (o.op) {
      case "upsert":
        this.intents.set(o.spec.node, o.spec);
        this.tracker.upsertIntent(o.spec);
        return;
      case "remove":
        this.intents.delete(o.node);
        this.tracker.removeIntent(o.node);
        return;
      case "blocks":
        this.blocks = o.blocks;
        this.tracker.setOwnBlocks(o.blocks);
        return;
      case "options":
        this.ipip = o.ipip;
        this.underlay = o.underlay ? "192.168.0.99" : undefined;
        this.tracker.setOptions({
          ipipSupported: o.ipip,
          ...(this.underlay ? { underlayIP: this.underlay } : {}),
        });
        return;
    }
  }

  full() {
    return computeDesired({
      node: SELF,
      intents: [...this.intents.values()],
      ownBlocks: this.blocks,
      ipipSupported: this.ipip,
      ...(this.underlay ? { underlayIP: this.underlay } : {}),
    });
  }
}

function snapshot(i: DesiredIndex): DesiredIndex {
  return {
    ...i,
    routes: new Map(i.routes),
    neighbors: new Map(i.neighbors),
    fdb: new Map(i.fdb),
    devices: new Set(i.devices),
  };
}

function assertSameIndex(got: DesiredIndex, want: DesiredIndex): void {
  assert.deepEqual(got.vxlan, want.vxlan);
  assert.deepEqual(got.routes, want.routes);
  assert.deepEqual(got.neighbors, want.neighbors);
  assert.deepEqual(got.fdb, want.fdb);
  assert.deepEqual(got.devices, want.devices);
}

describe("DesiredTracker", () => {
  it("after any sequence of changes holds exactly what computeDesired computes, problems included", () => {
    fc.assert(
      fc.property(fc.array(arbOp, { minLength: 1, maxLength: 30 }), (ops) => {
        const b = new Both();
        for (const o of ops) {
          const before = snapshot(b.tracker.index);
          b.apply(o);
          const { desired, problems } = b.full();
          assertSameIndex(b.tracker.index, indexDesired(desired));
          assert.deepEqual([...b.tracker.problems()].sort(), [...problems].sort());
          // every key whose desired entry changed was reported
          const changed = emptyChanges();
          markDifference(before, b.tracker.index, changed);
          const reported = b.tracker.takeChanges();
          for (const kind of ["routes", "neighbors", "fdb"] as const) {
            for (const k of changed[kind])
              assert.ok(reported[kind].has(k), `${kind} ${k} changed unreported`);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("reports the CrossSubnet path per peer and switches it when its own subnet changes", () => {
    const cross = (node: string, n: number, underlayIP: string): RouteIntentSpec => ({
      node,
      underlayIP,
      encapsulation: "VXLAN",
      vtep: { ip: `10.244.${n}.0`, mac: `02:00:00:00:00:0${n}`, vni: 4096, port: 4789 },
      routes: [
        {
          dst: `10.244.${n}.0/26`,
          gateway: `10.244.${n}.0`,
          device: "weft.vxlan",
          onlink: true,
          direct: underlayIP,
        },
      ],
      neighbors: [{ ip: `10.244.${n}.0`, mac: `02:00:00:00:00:0${n}`, device: "weft.vxlan" }],
      fdb: [{ mac: `02:00:00:00:00:0${n}`, dst: underlayIP, device: "weft.vxlan" }],
    });
    const t = new DesiredTracker({ node: "a", underlaySubnets: ["192.0.2.11/24"] });
    t.setIntents([cross("a", 1, "192.0.2.11"), cross("b", 2, "192.0.2.12"), cross("c", 3, "203.0.113.13")]);
    assert.deepEqual(t.peerPaths(), [
      { node: "b", family: "IPv4", path: "Direct" },
      { node: "c", family: "IPv4", path: "VXLAN" },
    ]);
    assert.equal(t.index.routes.get("10.244.2.0/26")?.gateway, "192.0.2.12");
    t.takeChanges();
    t.setOptions({ underlaySubnets: ["203.0.113.11/24"] });
    assert.deepEqual(
      t.peerPaths().map((p) => p.path),
      ["VXLAN", "Direct"],
    );
    assert.deepEqual([...t.takeChanges().routes].sort(), ["10.244.2.0/26", "10.244.3.0/26"]);
  });

  it("setIntents compares by identity: an unchanged list reports nothing", () => {
    const b = new Both();
    const specs = NODES.map((n) => fc.sample(arbIntent(n), 1)[0]!);
    b.tracker.setIntents(specs);
    b.tracker.takeChanges();
    b.tracker.setIntents([...specs]);
    const c = b.tracker.takeChanges();
    assert.equal(c.routes.size + c.neighbors.size + c.fdb.size, 0);
    b.tracker.setIntents([]);
    assert.deepEqual(b.tracker.toState(), computeDesired({ node: SELF, intents: [] }).desired);
  });

  it("a changed VTEP reports only that node's keys", () => {
    const t = new DesiredTracker({ node: "self", underlayIP: "192.168.0.254" });
    const spec = (n: number, mac: string): RouteIntentSpec => ({
      node: `node-${n}`,
      underlayIP: `192.168.1.${n}`,
      encapsulation: "VXLAN",
      vtep: { ip: `10.244.${n}.0`, mac, vni: 4096, port: 4789 },
      routes: [{ dst: `10.244.${n}.0/24`, gateway: `10.244.${n}.0`, device: DEV, onlink: true }],
      neighbors: [{ ip: `10.244.${n}.0`, mac, device: DEV }],
      fdb: [{ mac, dst: `192.168.1.${n}`, device: DEV }],
    });
    t.setIntents(
      Array.from({ length: 100 }, (_, n) => spec(n, `02:00:00:00:01:${n.toString(16).padStart(2, "0")}`)),
    );
    t.takeChanges();
    t.upsertIntent(spec(7, "02:00:00:00:02:07"));
    const c = t.takeChanges();
    assert.deepEqual([...c.routes], []);
    assert.deepEqual([...c.neighbors], [neighborKey(DEV, "10.244.7.0")]);
    assert.deepEqual(
      [...c.fdb].sort(),
      [fdbMacKey(DEV, "02:00:00:00:01:07"), fdbMacKey(DEV, "02:00:00:00:02:07")].sort(),
    );
  });
});

// ---- the dataplane's loop, without the kernel: events mark keys as kernel.ts does ----

type Drift =
  | { d: "delRoute" | "foreignRoute" | "unforeign"; dst: number }
  | { d: "neigh"; ip: number; mac: number; permanent: boolean }
  | { d: "delNeigh"; ip: number }
  | { d: "fdbAdd" | "fdbDel"; mac: number; dst: number };

const canonDsts = ["10.244.0.0/26", "10.244.1.0/26", "10.244.2.0/26", "10.244.3.0/26"];
const canonIps = ["10.244.0.0", "10.244.1.0", "10.244.2.0", "192.168.0.7"];
const canonMacs = ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03", "02:00:00:00:00:0a"];

const arbDrift: fc.Arbitrary<Drift> = fc.oneof(
  fc.record({
    d: fc.constantFrom("delRoute" as const, "foreignRoute" as const, "unforeign" as const),
    dst: fc.nat(3),
  }),
  fc.record({ d: fc.constant("neigh" as const), ip: fc.nat(3), mac: fc.nat(3), permanent: fc.boolean() }),
  fc.record({ d: fc.constant("delNeigh" as const), ip: fc.nat(3) }),
  fc.record({ d: fc.constantFrom("fdbAdd" as const, "fdbDel" as const), mac: fc.nat(3), dst: fc.nat(2) }),
);

/** What KernelDataplane.handleEvent does to `have` and to the dirty keys for one notification. */
function drift(want: DesiredIndex, have: ObservedState, dirty: DesiredChanges, x: Drift): void {
  switch (x.d) {
    case "delRoute":
    case "foreignRoute":
    case "unforeign": {
      const key = canonDsts[x.dst]!;
      if (x.d === "delRoute") have.routes.delete(key);
      else if (x.d === "foreignRoute") {
        have.foreignRoutes.add(key);
        have.routes.delete(key);
      } else have.foreignRoutes.delete(key);
      if (!routeInSync(want, have, key) || (x.d !== "delRoute" && want.routes.has(key)))
        dirty.routes.add(key);
      return;
    }
    case "neigh":
    case "delNeigh": {
      const ip = canonIps[x.ip]!;
      const key = neighborKey(DEV, ip);
      if (x.d === "neigh")
        have.neighbors.set(key, { ip, mac: canonMacs[x.mac]!, device: DEV, permanent: x.permanent });
      else have.neighbors.delete(key);
      if (!neighborInSync(want, have, key)) dirty.neighbors.add(key);
      return;
    }
    case "fdbAdd":
    case "fdbDel": {
      const f: FdbEntry = { mac: canonMacs[x.mac]!, dst: unders[x.dst]!, device: DEV };
      const added = x.d === "fdbAdd";
      if (added) observeFdb(have, f);
      else forgetFdb(have, f);
      if (!fdbRemoteInSync(want, f, added)) dirty.fdb.add(fdbMacKey(DEV, f.mac));
      return;
    }
  }
}

const PHASES = ["set neighbor", "set fdb", "set route", "del route", "del fdb", "del neighbor"];
const phase = (a: Action) => PHASES.indexOf(`${a.op} ${a.kind}`);
/** Actions as a comparable list: by phase (the order that matters), then by what they do. */
const canonical = (as: Action[]) =>
  as.map((a) => `${phase(a)} ${describeAction(a)}`).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
const phasesInOrder = (as: Action[]) => as.every((a, i) => i === 0 || phase(as[i - 1]!) <= phase(a));

describe("incremental diff", () => {
  it("diffing the marked keys gives exactly the full diff's actions, changes and drift interleaved", () => {
    const step = fc.oneof(
      { weight: 3, arbitrary: arbOp.map((o) => ({ kind: "op" as const, o })) },
      { weight: 2, arbitrary: arbDrift.map((x) => ({ kind: "drift" as const, x })) },
      { weight: 2, arbitrary: fc.constant({ kind: "converge" as const }) },
    );
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), (steps) => {
        const b = new Both();
        const have = emptyObserved();
        let dirty = emptyChanges();
        const conflicts = new Map<string, string>();
        for (const s of [...steps, { kind: "converge" as const }]) {
          if (s.kind === "op") b.apply(s.o);
          else if (s.kind === "drift") drift(b.tracker.index, have, dirty, s.x);
          else {
            const want = b.tracker.index;
            const c = b.tracker.takeChanges();
            for (const kind of ["routes", "neighbors", "fdb"] as const)
              for (const k of c[kind]) dirty[kind].add(k);
            const full = diff(want, have);
            const inc = diffKeys(want, have, dirty);
            dirty = emptyChanges();
            assert.deepEqual(canonical(inc.actions), canonical(full.actions));
            assert.ok(phasesInOrder(inc.actions), "neighbor -> FDB -> route, then deletions in reverse");
            for (const k of inc.clear) conflicts.delete(k);
            for (const [i, k] of inc.conflictKeys.entries()) conflicts.set(k, inc.conflicts[i]!);
            assert.deepEqual([...conflicts.values()].sort(), [...full.conflicts].sort());
            for (const a of inc.actions) recordApplied(have, a);
            assert.deepEqual(diff(want, have).actions, []);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("a whole new desired state: only the keys that differ are marked", () => {
    const mk = (macs: string[]) =>
      indexDesired({
        routes: [],
        neighbors: macs.map((mac, i) => ({ ip: `10.0.0.${i}`, mac, device: DEV })),
        fdb: [],
      });
    const out = emptyChanges();
    markDifference(
      mk(["02:00:00:00:00:01", "02:00:00:00:00:02"]),
      mk(["02:00:00:00:00:01", "02:00:00:00:00:09"]),
      out,
    );
    assert.deepEqual([...out.neighbors], [neighborKey(DEV, "10.0.0.1")]);
  });
});
