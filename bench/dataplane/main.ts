/**
 * bench/dataplane: program 10,000 remote VXLAN nodes (10k routes + 10k neighbors + 10k FDB
 * entries) into a fresh network namespace through the agent's code path (KernelDataplane), and the
 * same entries through `ip -batch` + `bridge -batch`, in the same run. Then the time to apply one
 * changed intent.
 *
 *   node dist/bench/dataplane/main.js [--nodes 10000] [--rounds 3] [--changes 20]
 *
 * Prints a readable report and, last, one JSON line with the results. Needs root and iproute2.
 */
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { computeDesired } from "../../agent/dataplane/desired.js";
import type { ApplyResult } from "../../agent/dataplane/kernel.js";
import type { DesiredState } from "../../agent/dataplane/model.js";
import type { RouteIntentSpec } from "../../api/routeintent.js";
import { Driver, Netns, requireRootAndIproute2 } from "../../test/dataplane/kernel-netns.js";

const DEV = "weft.vxlan";
const LOCAL = "172.31.255.254";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "10000" },
    rounds: { type: "string", default: "3" },
    changes: { type: "string", default: "20" },
  },
});
const NODES = Number(values.nodes);
const ROUNDS = Number(values.rounds);
const CHANGES = Number(values.changes);

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
    vtep: { ip: block, mac, vni: 4096, port: 4789 },
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
    vtep: { ip: "10.63.255.0", mac: "02:ff:ff:ff:ff:01", vni: 4096, port: 4789 },
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

function underlay(ns: Netns): void {
  ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1");
  ns.ip("addr", "add", `${LOCAL}/12`, "dev", "u0");
  ns.ip("link", "set", "u0", "up");
  ns.ip("link", "set", "u1", "up");
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

async function weftRound(desired: DesiredState, changeSets: DesiredState[]) {
  const ns = new Netns(`bw${Date.now() % 100000}`);
  const drv = new Driver(ns);
  try {
    underlay(ns);
    // the device is created at start (like an agent coming up on a fresh node), not timed
    await drv.call<ApplyResult>("start", {
      desired: { vxlan: desired.vxlan, routes: [], neighbors: [], fdb: [] },
      options: { resyncIntervalMs: 3_600_000 },
    });
    const t0 = performance.now();
    const res = await drv.call<ApplyResult>("set", { desired }, 120_000);
    const wall = performance.now() - t0;
    if (res.failed.length) throw new Error(`weft apply failed: ${JSON.stringify(res.failed.slice(0, 3))}`);
    const counts = census(ns);
    const changes: number[] = [];
    for (const c of changeSets) {
      const r = await drv.call<ApplyResult>("set", { desired: c });
      if (r.failed.length || r.actions === 0) throw new Error(`change not applied: ${JSON.stringify(r)}`);
      changes.push(r.ms);
    }
    const t1 = performance.now();
    const rs = await drv.call<ApplyResult>("resync", {}, 120_000);
    const resyncWall = performance.now() - t1;
    return {
      ms: res.ms,
      wall,
      actions: res.actions,
      counts,
      changes,
      resync: { ms: rs.ms, wall: resyncWall, actions: rs.actions },
    };
  } finally {
    await drv.stop().catch(() => drv.kill());
    ns.delete();
  }
}

function ipRound(desired: DesiredState) {
  const ns = new Netns(`bi${Date.now() % 100000}`);
  try {
    underlay(ns);
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
    ns.ip("addr", "add", v.address!, "dev", DEV);
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
    execFileSync("ip", ["-n", ns.name, "-batch", "-"], { input: neigh.join("\n") });
    const t1 = performance.now();
    execFileSync("bridge", ["-n", ns.name, "-batch", "-"], { input: fdb.join("\n") });
    const t2 = performance.now();
    execFileSync("ip", ["-n", ns.name, "-batch", "-"], { input: routes.join("\n") });
    const t3 = performance.now();
    return { ms: t3 - t0, neighMs: t1 - t0, fdbMs: t2 - t1, routeMs: t3 - t2, counts: census(ns) };
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

async function main(): Promise<void> {
  requireRootAndIproute2();
  const remotes = Array.from({ length: NODES }, (_, i) => intent(i + 1));
  const intents = [self(), ...remotes];
  const desired = desiredOf(intents);
  // each change: one node's VTEP moves (new MAC and underlay IP), then moves back
  const changeSets: DesiredState[] = [];
  const k = Math.max(1, Math.floor(NODES / 2));
  for (let c = 0; c < CHANGES; c++) {
    const changed = [...intents];
    changed[k] = intent(k, c % 2 === 0 ? 1 : 0);
    changeSets.push(desiredOf(changed));
  }
  console.log(
    `# ${NODES} remote nodes: ${desired.routes.length} routes, ${desired.neighbors.length} neighbors, ${desired.fdb.length} FDB entries`,
  );

  const weft: Awaited<ReturnType<typeof weftRound>>[] = [];
  const ip: ReturnType<typeof ipRound>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // alternate who goes first so neither always gets the warm caches
    if (r % 2 === 0) {
      weft.push(await weftRound(desired, changeSets));
      ip.push(ipRound(desired));
    } else {
      ip.push(ipRound(desired));
      weft.push(await weftRound(desired, changeSets));
    }
    const w = weft[weft.length - 1]!;
    const b = ip[ip.length - 1]!;
    console.log(
      `round ${r + 1}: weft ${r1(w.ms)} ms (wall incl. JSON to the driver ${r1(w.wall)} ms) | ` +
        `ip+bridge -batch ${r1(b.ms)} ms (neigh ${r1(b.neighMs)}, fdb ${r1(b.fdbMs)}, route ${r1(b.routeMs)}) | ` +
        `change p50 ${r1(median(w.changes))} ms | resync ${r1(w.resync.ms)} ms`,
    );
    if (JSON.stringify(w.counts) !== JSON.stringify(b.counts)) {
      throw new Error(
        `different results: weft ${JSON.stringify(w.counts)} vs ip ${JSON.stringify(b.counts)}`,
      );
    }
  }
  const weftMs = median(weft.map((w) => w.ms));
  const ipMs = median(ip.map((b) => b.ms));
  const changes = weft.flatMap((w) => w.changes);
  const result = {
    bench: "dataplane",
    nodes: NODES,
    entries: weft[0]!.counts,
    rounds: ROUNDS,
    weftMs: r1(weftMs),
    weftWallMs: r1(median(weft.map((w) => w.wall))),
    ipBatchMs: r1(ipMs),
    ratio: Math.round((weftMs / ipMs) * 1000) / 1000,
    ratioTarget: 1.0,
    changeP50Ms: r1(median(changes)),
    changeP90Ms: r1(pct(changes, 90)),
    changeMaxMs: r1(Math.max(...changes)),
    changeTargetMs: 5,
    resyncMs: r1(median(weft.map((w) => w.resync.ms))),
    resyncActions: weft.map((w) => w.resync.actions).reduce((a, b) => a + b, 0),
  };
  console.log(
    `weft ${result.weftMs} ms vs ip+bridge -batch ${result.ipBatchMs} ms: ratio ${result.ratio} (target <= 1.0); ` +
      `one changed intent p50 ${result.changeP50Ms} ms, p90 ${result.changeP90Ms} ms (target < 5 ms)`,
  );
  console.log(JSON.stringify(result));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
