/**
 * bench/dataplane: program 10,000 remote VXLAN nodes (10k routes + 10k neighbors + 10k FDB
 * entries) into a fresh network namespace through the agent's code path (KernelDataplane), and the
 * same entries through `ip -batch` + `bridge -batch`, in the same run. Then the time to apply one
 * changed intent on that 10k-node state, the way the agent does it (a DesiredTracker upsert and
 * setDesired(tracker): handleMs in the driver, from the request to every change acknowledged by
 * the kernel), and, for comparison, the same change handed over as a whole desired state. Also
 * the in-process cost of computing the desired state of 10k intents, full and incremental.
 * Other engineers share this 2-CPU machine: the load average is printed with the numbers.
 *
 * With --nat both namespaces first get the agent's outgoing-NAT table (nftables, inet weft) for a
 * pool covering every block, as a node with natOutgoing pools has it.
 *
 *   node dist/bench/dataplane/main.js [--nodes 10000] [--rounds 3] [--changes 60] [--legacy-changes 5] [--nat]
 *
 * Prints a readable report and, last, one JSON line with the results. Needs root and iproute2.
 */
import { execFileSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import {
  type ApplyResult,
  computeDesired,
  type DesiredState,
  DesiredTracker,
  NatTable,
  natPlan,
} from "../../agent/index.js";
import { POOL_DEFAULTS, type RouteIntentSpec, VXLAN_DEVICE } from "../../api/index.js";
import { Driver, Netns, requireRootAndIproute2 } from "../../devenv/index.js";
import type { Headline } from "../proc.js";

const DEV = VXLAN_DEVICE;
const LOCAL = "172.31.255.254";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "10000" },
    rounds: { type: "string", default: "3" },
    changes: { type: "string", default: "60" },
    "legacy-changes": { type: "string", default: "5" },
    nat: { type: "boolean", default: false },
  },
});
const NAT = values.nat === true;
const NODES = Number(values.nodes);
const ROUNDS = Number(values.rounds);
const CHANGES = Number(values.changes);
const LEGACY = Number(values["legacy-changes"]);

const hex2 = (n: number) => (n & 255).toString(16).padStart(2, "0");

/** Remote node i (1-based): block 10.(i>>8+64).(i&255).0/24 behind VTEP .0, underlay 172.16.x.y. */
function intent(i: number, variant = 0): RouteIntentSpec {
  const block = `10.${64 + (i >> 8)}.${i & 255}.0`;
  const mac = `02:${hex2(variant)}:00:${hex2(i >> 16)}:${hex2(i >> 8)}:${hex2(i)}`;
  const underlayIP = `172.${16 + variant}.${(i >> 8) & 255}.${i & 255}`;
  return {
    node: `node-${i}`,
    underlayIP,
    encapsulation: "VXLAN",
    vtep: { ip: block, mac, vni: POOL_DEFAULTS.vni, port: POOL_DEFAULTS.vxlanPort },
    routes: [{ dst: `${block}/24`, gateway: block, device: DEV, onlink: true }],
    neighbors: [{ ip: block, mac, device: DEV }],
    fdb: [{ mac, dst: underlayIP, device: DEV }],
  };
}

function self(): RouteIntentSpec {
  return {
    node: "self",
    underlayIP: LOCAL,
    encapsulation: "VXLAN",
    vtep: {
      ip: "10.63.255.0",
      mac: "02:ff:ff:ff:ff:01",
      vni: POOL_DEFAULTS.vni,
      port: POOL_DEFAULTS.vxlanPort,
    },
    routes: [],
    neighbors: [],
    fdb: [],
  };
}

function desiredOf(intents: RouteIntentSpec[]): DesiredState {
  const r = computeDesired({ node: "self", intents });
  if (r.problems.length) throw new Error(`unexpected problems: ${r.problems.slice(0, 3).join("; ")}`);
  return r.desired;
}

async function underlay(ns: Netns): Promise<void> {
  ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1");
  ns.ip("addr", "add", `${LOCAL}/12`, "dev", "u0");
  ns.ip("link", "set", "u0", "up");
  ns.ip("link", "set", "u1", "up");
  if (!NAT) return;
  // the table an agent writes for a natOutgoing pool holding every block of this benchmark
  const pool = {
    apiVersion: "weft.dev/v1alpha1" as const,
    kind: "IPPool" as const,
    metadata: { name: "bench" },
    spec: { cidr: "10.0.0.0/8" },
  };
  const table = new NatTable({ nft: ["ip", "netns", "exec", ns.name, "nft"] });
  await table.set(natPlan([pool], new Set(["bench"])));
  const state = table.status();
  await table.stop();
  if (!state.applied) throw new Error(`NAT table not written: ${state.error}`);
}

/** What both sides must have ended with, read with iproute2 (counts of our kinds of entries). */
function census(ns: Netns) {
  const routes = ns
    .json<{ flags?: string[] }>("route", "show", "dev", DEV)
    .filter((r) => r.flags?.includes("onlink"));
  const neigh = ns
    .json<{ state?: string[] }>("neigh", "show", "dev", DEV)
    .filter((n) => n.state?.includes("PERMANENT"));
  const fdb = ns.bridgeJson<{ dst?: string }>("fdb", "show", "dev", DEV).filter((f) => f.dst);
  return { routes: routes.length, neighbors: neigh.length, fdb: fdb.length };
}

interface DriverResult extends ApplyResult {
  handleMs: number;
  cpuMs?: number;
}

async function weftRound(remotes: RouteIntentSpec[], vxlan: DesiredState["vxlan"], legacy: DesiredState[]) {
  const ns = new Netns(`bw${Date.now() % 100000}`);
  const drv = new Driver(ns);
  try {
    await underlay(ns);
    // the device is created at start (like an agent coming up on a fresh node), not timed
    await drv.call<ApplyResult>("start", {
      desired: { vxlan, routes: [], neighbors: [], fdb: [] },
      options: { resyncIntervalMs: 3_600_000 },
    });
    // bulk: every intent at once through the agent's incremental path (a DesiredTracker)
    const t0 = performance.now();
    const res = await drv.call<DriverResult>(
      "intents",
      { tracker: { node: "self" }, upsert: [self(), ...remotes] },
      120_000,
    );
    const wall = performance.now() - t0;
    if (res.failed.length) throw new Error(`weft apply failed: ${JSON.stringify(res.failed.slice(0, 3))}`);
    const counts = census(ns);
    // one changed intent at a time: node k's VTEP moves (new MAC and underlay IP), then back
    const k = Math.max(1, Math.floor(remotes.length / 2));
    const changes: { handle: number; apply: number }[] = [];
    for (let c = 0; c < CHANGES; c++) {
      const r = await drv.call<DriverResult>("intents", { upsert: [intent(k, c % 2 === 0 ? 1 : 0)] });
      if (r.failed.length || r.actions === 0) throw new Error(`change not applied: ${JSON.stringify(r)}`);
      changes.push({ handle: r.handleMs, apply: r.ms });
    }
    // the same kind of change handed over as a whole desired state (setDesired(DesiredState))
    const legacyChanges: number[] = [];
    for (const d of legacy) {
      const r = await drv.call<DriverResult>("set", { desired: d }, 120_000);
      if (r.failed.length || r.actions === 0) throw new Error(`change not applied: ${JSON.stringify(r)}`);
      legacyChanges.push(r.handleMs);
    }
    const t1 = performance.now();
    const rs = await drv.call<ApplyResult>("resync", {}, 120_000);
    const resyncWall = performance.now() - t1;
    return {
      ms: res.ms,
      cpu: res.cpuMs ?? Number.NaN,
      handle: res.handleMs,
      wall,
      actions: res.actions,
      counts,
      changes,
      legacyChanges,
      resync: { ms: rs.ms, wall: resyncWall, actions: rs.actions },
    };
  } finally {
    await drv.stop().catch(() => drv.kill());
    ns.delete();
  }
}

/**
 * Runs `tool -batch` under bash's `time` and returns its CPU time (user + system) in ms: with
 * other engineers' tests sharing the CPUs, CPU time compares the two sides where wall time cannot.
 */
function timedBatch(tool: string, ns: Netns, lines: string[]): number {
  const out = execFileSync(
    "bash",
    ["-c", `TIMEFORMAT='%3U %3S'; { time ${tool} -n "$0" -batch - >/dev/null; } 2>&1`, ns.name],
    { input: lines.join("\n"), encoding: "utf8" },
  );
  const m = /([\d.]+) ([\d.]+)\s*$/.exec(out);
  if (!m) throw new Error(`${tool} -batch: ${out}`);
  return (Number(m[1]) + Number(m[2])) * 1000;
}

async function ipRound(desired: DesiredState) {
  const ns = new Netns(`bi${Date.now() % 100000}`);
  try {
    await underlay(ns);
    const v = desired.vxlan!;
    ns.ip(
      "link",
      "add",
      DEV,
      "address",
      v.mac!,
      "mtu",
      "1450",
      "type",
      "vxlan",
      "id",
      String(v.vni),
      "dstport",
      String(v.port),
      "local",
      v.localIP,
      "dev",
      "u0",
      "nolearning",
    );
    ns.ip("addr", "add", v.addresses![0]!, "dev", DEV);
    ns.ip("link", "set", DEV, "up");
    const neigh = desired.neighbors.map(
      (n) => `neigh replace ${n.ip} lladdr ${n.mac} dev ${n.device} nud permanent`,
    );
    const fdb = desired.fdb.map((f) => `fdb replace ${f.mac} dev ${f.device} dst ${f.dst} self permanent`);
    const routes = desired.routes.map((r) =>
      r.type === "blackhole"
        ? `route replace blackhole ${r.dst} proto 87`
        : `route replace ${r.dst} via ${r.gateway} dev ${r.device} onlink proto 87`,
    );
    // same order as the agent: neighbors, FDB, routes
    const t0 = performance.now();
    let cpu = 0;
    cpu += timedBatch("ip", ns, neigh);
    const t1 = performance.now();
    cpu += timedBatch("bridge", ns, fdb);
    const t2 = performance.now();
    cpu += timedBatch("ip", ns, routes);
    const t3 = performance.now();
    return { ms: t3 - t0, cpu, neighMs: t1 - t0, fdbMs: t2 - t1, routeMs: t3 - t2, counts: census(ns) };
  } finally {
    ns.delete();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : Number.NaN;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

/** In-process costs of turning 10k intents into a desired state, full and incremental. */
function desiredCosts(remotes: RouteIntentSpec[]) {
  const fresh = () => [self(), ...remotes.map((r) => ({ ...r }))];
  const time = (f: () => void, n: number) => {
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      f();
      xs.push(performance.now() - t0);
    }
    return median(xs);
  };
  // cold: new spec objects every time (nothing remembered); warm: the same objects again, as the
  // agent's informer cache hands them over when one intent of 10k changed
  const cold = time(() => computeDesired({ node: "self", intents: fresh() }), 3);
  const same = fresh();
  computeDesired({ node: "self", intents: same });
  const warm = time(() => {
    same[1] = { ...same[1]! };
    computeDesired({ node: "self", intents: same });
  }, 5);
  const trackerBuild = time(() => new DesiredTracker({ node: "self" }).setIntents(fresh()), 3);
  const tracker = new DesiredTracker({ node: "self" });
  tracker.setIntents(same);
  const k = Math.max(1, Math.floor(remotes.length / 2));
  let v = 0;
  const setIntents = time(() => {
    same[k] = intent(k, ++v % 2);
    tracker.setIntents(same);
    tracker.takeChanges();
  }, 20);
  const upsert = time(() => {
    tracker.upsertIntent(intent(k, ++v % 2));
    tracker.takeChanges();
  }, 50);
  return { cold, warm, trackerBuild, setIntents, upsert };
}

const load = () =>
  loadavg()
    .map((x) => Math.round(x * 100) / 100)
    .join(" ");

async function main(): Promise<void> {
  requireRootAndIproute2();
  const loadBefore = load();
  const remotes = Array.from({ length: NODES }, (_, i) => intent(i + 1));
  const intents = [self(), ...remotes];
  const desired = desiredOf(intents);
  const k = Math.max(1, Math.floor(NODES / 2));
  const legacy: DesiredState[] = [];
  // the tracker's changes leave node k at variant 1 after an odd number of them: start from the other
  const first = CHANGES % 2 === 1 ? 0 : 1;
  for (let c = 0; c < LEGACY; c++) {
    const changed = [...intents];
    changed[k] = intent(k, (first + c) % 2);
    legacy.push(desiredOf(changed));
  }
  console.log(
    `# ${NODES} remote nodes${NAT ? " (outgoing-NAT table present)" : ""}: ${desired.routes.length} routes, ${desired.neighbors.length} neighbors, ${desired.fdb.length} FDB entries; load average ${loadBefore} (${cpus().length} CPUs)`,
  );
  const costs = desiredCosts(remotes);
  console.log(
    `desired state for ${NODES} intents: computeDesired cold ${r1(costs.cold)} ms, warm (one spec replaced) ${r1(costs.warm)} ms | ` +
      `DesiredTracker build ${r1(costs.trackerBuild)} ms, setIntents with one changed ${r1(costs.setIntents)} ms, upsertIntent ${r2(costs.upsert)} ms`,
  );

  const weft: Awaited<ReturnType<typeof weftRound>>[] = [];
  const ip: Awaited<ReturnType<typeof ipRound>>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // alternate who goes first so neither always gets the warm caches
    if (r % 2 === 0) {
      weft.push(await weftRound(remotes, desired.vxlan, legacy));
      ip.push(await ipRound(desired));
    } else {
      ip.push(await ipRound(desired));
      weft.push(await weftRound(remotes, desired.vxlan, legacy));
    }
    const w = weft[weft.length - 1]!;
    const b = ip[ip.length - 1]!;
    console.log(
      `round ${r + 1}: weft ${r1(w.ms)} ms (incl. tracker build ${r1(w.handle)} ms, wall incl. JSON to the driver ${r1(w.wall)} ms; CPU ${r1(w.cpu)} ms) | ` +
        `ip+bridge -batch ${r1(b.ms)} ms (neigh ${r1(b.neighMs)}, fdb ${r1(b.fdbMs)}, route ${r1(b.routeMs)}; CPU ${r1(b.cpu)} ms) | ` +
        `change p50 ${r2(median(w.changes.map((c) => c.handle)))} ms | resync ${r1(w.resync.ms)} ms | load ${load()}`,
    );
    if (JSON.stringify(w.counts) !== JSON.stringify(b.counts)) {
      throw new Error(
        `different results: weft ${JSON.stringify(w.counts)} vs ip ${JSON.stringify(b.counts)}`,
      );
    }
  }
  const weftMs = median(weft.map((w) => w.ms));
  const ipMs = median(ip.map((b) => b.ms));
  // The whole process: from the intents in the agent's memory to every entry acknowledged by the
  // kernel, building the desired state (the DesiredTracker) included.
  const wholeMs = median(weft.map((w) => w.handle));
  const wholeRatio = Math.round((wholeMs / ipMs) * 1000) / 1000;
  const headline: Headline = {
    metric: `program ${NODES} remote nodes (routes + ARP + FDB) into a fresh namespace, whole process (desired state built from the intents, then every entry acknowledged), as a ratio to the peer`,
    value: wholeRatio,
    target: 0.8,
    unit: "ratio",
    peer: "ip -batch (neighbors, routes) + bridge -batch (FDB), same run, median of rounds",
  };
  const handles = weft.flatMap((w) => w.changes.map((c) => c.handle));
  const applies = weft.flatMap((w) => w.changes.map((c) => c.apply));
  const legacyMs = weft.flatMap((w) => w.legacyChanges);
  const result = {
    bench: "dataplane",
    nodes: NODES,
    natTable: NAT,
    entries: weft[0]!.counts,
    rounds: ROUNDS,
    weftMs: r1(weftMs),
    weftWithTrackerMs: r1(median(weft.map((w) => w.handle))),
    weftWallMs: r1(median(weft.map((w) => w.wall))),
    ipBatchMs: r1(ipMs),
    wholeProcessRatio: wholeRatio,
    ratioTarget: 0.8,
    /** Partial: the kernel part alone, the desired state already built. */
    kernelOnlyRatio: Math.round((weftMs / ipMs) * 1000) / 1000,
    /** Wider: with the JSON hand-off of every intent to the driver process. */
    withJsonHandoffRatio: Math.round((median(weft.map((w) => w.wall)) / ipMs) * 1000) / 1000,
    weftCpuMs: r1(median(weft.map((w) => w.cpu))),
    ipBatchCpuMs: r1(median(ip.map((b) => b.cpu))),
    cpuRatio: Math.round((median(weft.map((w) => w.cpu)) / median(ip.map((b) => b.cpu))) * 1000) / 1000,
    changes: handles.length,
    changeP50Ms: r2(median(handles)),
    changeP99Ms: r2(pct(handles, 99)),
    changeMaxMs: r2(Math.max(...handles)),
    changeKernelP50Ms: r2(median(applies)),
    changeTargetMs: 5,
    legacySetDesiredChangeP50Ms: r1(median(legacyMs)),
    computeDesiredColdMs: r1(costs.cold),
    computeDesiredWarmMs: r1(costs.warm),
    trackerBuildMs: r1(costs.trackerBuild),
    trackerSetIntentsMs: r2(costs.setIntents),
    trackerUpsertMs: r2(costs.upsert),
    resyncMs: r1(median(weft.map((w) => w.resync.ms))),
    resyncActions: weft.map((w) => w.resync.actions).reduce((a, b) => a + b, 0),
    loadavgBefore: loadBefore,
    loadavgAfter: load(),
    cpus: cpus().length,
    headline,
  };
  console.log(
    `weft ${result.weftMs} ms kernel part (ratio ${result.kernelOnlyRatio}), CPU time ratio ${result.cpuRatio}; ` +
      `one changed intent (tracker) p50 ${result.changeP50Ms} ms, p99 ${result.changeP99Ms} ms over ${result.changes} (target < 5 ms); ` +
      `whole desired state per change p50 ${result.legacySetDesiredChangeP50Ms} ms; load average ${result.loadavgAfter}`,
  );
  console.log(
    `headline: whole process ${result.weftWithTrackerMs} ms vs ip+bridge -batch ${result.ipBatchMs} ms: ratio ${wholeRatio} ` +
      `(target <= 0.8): ${wholeRatio <= 0.8 ? "meets" : "MISSES"} the target; with the JSON hand-off ${result.weftWallMs} ms (ratio ${result.withJsonHandoffRatio})`,
  );
  console.log(
    "timed span: weft, from handing every intent to a DesiredTracker in the driver process until the kernel has " +
      "acknowledged every route, neighbor and FDB entry (desired state built, diffed and programmed); ip+bridge, " +
      "three `-batch` runs (neighbors, FDB, routes) from exec to exit, the batch text prepared beforehand; the " +
      "VXLAN device exists on both sides before timing starts. One change: the driver's handling time of one upserted intent.",
  );
  console.log(JSON.stringify(result));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
