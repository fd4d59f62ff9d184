import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ANNOTATIONS, type RouteReflectorStatus } from "../api/index.js";
import { chooseReflectors, type ReflectorCandidate, type ReflectorChoiceInput } from "./reflectors.js";

const t0 = new Date("2030-01-01T00:00:00Z");
const later = (s: number) => new Date(t0.getTime() + s * 1000);

function cand(
  name: string,
  zone: string | undefined,
  extra: Partial<ReflectorCandidate> = {},
): ReflectorCandidate {
  return {
    name,
    labels: zone ? { zone } : {},
    annotations: {},
    ready: true,
    creationTimestamp: `2029-01-01T00:00:${name.slice(-2)}Z`,
    addressed: true,
    ...extra,
  };
}

const six = ["a", "a", "b", "b", "c", "c"].map((z, i) => cand(`node-${String(i + 1).padStart(2, "0")}`, z));

function step(input: Partial<ReflectorChoiceInput> & Pick<ReflectorChoiceInput, "nodes">) {
  return chooseReflectors({ spec: { count: 2 }, current: [], sessionsUp: () => true, now: t0, ...input });
}

/** Runs the controller's loop until nothing changes (each step is one status write). */
function settle(
  input: Omit<ReflectorChoiceInput, "current">,
  current: RouteReflectorStatus[] = [],
  steps = 20,
) {
  let cur = current;
  const seen: RouteReflectorStatus[][] = [];
  for (let i = 0; i < steps; i++) {
    const r = chooseReflectors({ ...input, current: cur });
    if (r.changes.length === 0) return { reflectors: cur, seen, last: r };
    cur = r.reflectors;
    seen.push(cur);
  }
  throw new Error("did not settle");
}

describe("automatic route reflectors", () => {
  it("chooses count reflectors at once, spread over zones, oldest Ready nodes first", () => {
    const r = step({ nodes: six, spec: { count: 3, zoneLabel: "zone" } });
    assert.deepEqual(
      r.reflectors.map((x) => [x.node, x.zone, x.state]),
      [
        ["node-01", "a", "Joining"],
        ["node-03", "b", "Joining"],
        ["node-05", "c", "Joining"],
      ],
    );
    assert.match(r.reflectors[0]?.reason ?? "", /zone a had 0 reflector\(s\); Ready; node since/);
    assert.deepEqual(r.problems, []);
  });

  it("prefers Ready nodes and never picks a NotReady one", () => {
    const nodes = [
      cand("n-01", undefined, { ready: false }),
      cand("n-02", undefined, { ready: undefined }),
      cand("n-03", undefined),
    ];
    const r = step({ nodes, spec: { count: 2 } });
    assert.deepEqual(
      r.reflectors.map((x) => x.node),
      ["n-02", "n-03"],
    );
  });

  it("replaces a reflector whose node is gone: the newcomer joins, and goes Active once its sessions are up", () => {
    const active = settle({
      nodes: six,
      spec: { count: 2, zoneLabel: "zone" },
      sessionsUp: () => true,
      now: t0,
    }).reflectors;
    assert.deepEqual(
      active.map((x) => [x.node, x.state]),
      [
        ["node-01", "Active"],
        ["node-03", "Active"],
      ],
    );
    const rest = six.filter((n) => n.name !== "node-01");
    let up = false;
    const joining = chooseReflectors({
      spec: { count: 2, zoneLabel: "zone" },
      nodes: rest,
      current: active,
      sessionsUp: () => up,
      now: later(60),
    });
    // a, the gone node's zone, still has a node: the replacement goes there
    assert.deepEqual(
      joining.reflectors.map((x) => [x.node, x.state]),
      [
        ["node-02", "Joining"],
        ["node-03", "Active"],
      ],
    );
    assert.match(joining.reflectors[0]?.reason ?? "", /replaces node-01 \(node is gone\)/);
    // nothing moves while its sessions are down
    const waiting = chooseReflectors({
      spec: { count: 2, zoneLabel: "zone" },
      nodes: rest,
      current: joining.reflectors,
      sessionsUp: () => up,
      now: later(61),
    });
    assert.deepEqual(waiting.changes, []);
    assert.ok(waiting.recheckMs !== undefined && waiting.recheckMs > 0);
    up = true;
    const done = chooseReflectors({
      spec: { count: 2, zoneLabel: "zone" },
      nodes: rest,
      current: joining.reflectors,
      sessionsUp: () => up,
      now: later(62),
    });
    assert.deepEqual(
      done.reflectors.map((x) => [x.node, x.state]),
      [
        ["node-02", "Active"],
        ["node-03", "Active"],
      ],
    );
  });

  it("replaces a NotReady reflector make-before-break, one at a time, after a grace period", () => {
    const base = { spec: { count: 2 }, sessionsUp: () => true };
    const active = settle({ ...base, nodes: six, now: t0 }).reflectors;
    assert.deepEqual(
      active.map((x) => x.node),
      ["node-01", "node-02"],
    );
    const sick = six.map((n) =>
      n.name === "node-01" ? { ...n, ready: false, readySince: later(100).toISOString() } : n,
    );
    // within the grace: kept, a recheck asked for
    const grace = chooseReflectors({ ...base, nodes: sick, current: active, now: later(105) });
    assert.deepEqual(grace.changes, []);
    assert.ok((grace.recheckMs ?? 0) <= 15_000);
    // after it: a replacement joins while node-01 stays; only once it is Active does node-01 go
    const { seen } = settle({ ...base, nodes: sick, now: later(200) }, active);
    assert.deepEqual(
      seen.map((s) => s.map((x) => `${x.node}:${x.state}`).join(",")),
      [
        "node-01:Active,node-02:Active,node-03:Joining",
        "node-01:Active,node-02:Active,node-03:Active",
        "node-02:Active,node-03:Active",
      ],
    );
    // never fewer than two working reflectors on the way
    for (const s of seen) assert.ok(s.filter((x) => x.node !== "node-01").length >= 1);
  });

  it("a Joining reflector turns Active after the deadline even if a session stays down", () => {
    const j = step({ nodes: six, spec: { count: 1 }, sessionsUp: () => false });
    const stuck = chooseReflectors({
      spec: { count: 1 },
      nodes: six,
      current: j.reflectors,
      sessionsUp: () => false,
      now: later(121),
    });
    assert.equal(stuck.reflectors[0]?.state, "Active");
    assert.match(stuck.reflectors[0]?.reason ?? "", /Active after 120 s with sessions still down/);
  });

  it("lets annotated nodes win: they reflect with their own cluster id and count toward count", () => {
    const nodes = six.map((n) =>
      n.name === "node-04" ? { ...n, annotations: { [ANNOTATIONS.routeReflectorClusterID]: "9.9.9.9" } } : n,
    );
    const r = settle({ nodes, spec: { count: 2 }, sessionsUp: () => true, now: t0 }).reflectors;
    assert.deepEqual(
      r.map((x) => [x.node, x.source, x.clusterID]),
      [
        ["node-01", "Automatic", "255.0.0.1"],
        ["node-04", "Annotation", "9.9.9.9"],
      ],
    );
    // annotating an automatic reflector hands it over to the annotation
    const both = nodes.map((n) =>
      n.name === "node-01" ? { ...n, annotations: { [ANNOTATIONS.routeReflectorClusterID]: "1.1.1.1" } } : n,
    );
    const after = chooseReflectors({
      spec: { count: 2 },
      nodes: both,
      current: r,
      sessionsUp: () => true,
      now: later(1),
    });
    assert.deepEqual(
      after.reflectors.map((x) => [x.node, x.source]),
      [
        ["node-01", "Annotation"],
        ["node-04", "Annotation"],
      ],
    );
  });

  it("names the field when the count exceeds the nodes or no node has the zone label, and still picks what it can", () => {
    const r = step({ nodes: six.slice(0, 2), spec: { count: 3, zoneLabel: "topology.kubernetes.io/zone" } });
    assert.deepEqual(
      r.problems.map((p) => p.field),
      ["spec.routeReflectors.count", "spec.routeReflectors.zoneLabel"],
    );
    assert.match(r.problems[0]?.message ?? "", /asks for 3 reflectors but only 2 BGP node\(s\) can be one/);
    assert.deepEqual(
      r.reflectors.map((x) => x.node),
      ["node-01", "node-02"],
    );
    const bad = step({ nodes: six, spec: { count: 0, zoneLabel: "not a label!" } });
    assert.deepEqual(
      bad.problems.map((p) => p.field),
      ["spec.routeReflectors.count", "spec.routeReflectors.zoneLabel"],
    );
    assert.deepEqual(bad.reflectors, []);
  });

  it("balances zones: a zone left without a reflector gets one back from a crowded zone, one step at a time", () => {
    const base = { spec: { count: 2, zoneLabel: "zone" }, sessionsUp: () => true };
    // zone a empty of candidates at first: both reflectors land in b
    const noA = six.filter((n) => n.labels.zone !== "a" && n.labels.zone !== "c");
    const first = settle({ ...base, nodes: noA, now: t0 }).reflectors;
    assert.deepEqual(
      first.map((x) => x.zone),
      ["b", "b"],
    );
    const { reflectors, seen } = settle({ ...base, nodes: six, now: later(10) }, first);
    assert.deepEqual(reflectors.map((x) => x.zone).sort(), ["a", "b"]);
    assert.equal(seen.length, 3, "join, activate, leave");
  });

  it("drops automatic reflectors when spec.routeReflectors goes away, keeping annotated ones", () => {
    const active = settle({ nodes: six, spec: { count: 2 }, sessionsUp: () => true, now: t0 }).reflectors;
    const off = chooseReflectors({
      spec: undefined,
      nodes: six,
      current: active,
      sessionsUp: () => true,
      now: later(1),
    });
    assert.deepEqual(off.reflectors, []);
    assert.match(off.changes[0] ?? "", /automatic reflectors off/);
  });
});
