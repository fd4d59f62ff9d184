/**
 * BGP benchmark: N nodes (network namespaces, one weft-agent with a real BIRD each), first as a
 * full mesh, then with two route reflectors, in the same run on a control plane of its own.
 * Per mode: the number of distinct sessions (mesh N(N-1)/2, reflectors 2N-3) and the convergence
 * time of a new block: IPAMBlock created for one node -> a BGP route for it in every other node's
 * kernel (target < 3 s). Ends with one JSON line.
 *
 *   node dist/bench/bgp/main.js [--nodes 50] [--rounds 5]
 */
import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { blockName } from "../../api/index.js";
import { ROUTE_PROTOCOL_BGP } from "../../bgp/index.js";
import {
  ClusterNetwork,
  ensureNeighborCapacity,
  requireRoot,
  startControlPlane,
  stopControlPlane,
  waitFor,
} from "../../devenv/index.js";

const run = promisify(execFile);

interface ModeResult {
  mode: "mesh" | "rr";
  nodes: number;
  sessions: number;
  expectedSessions: number;
  upMs: number;
  convergeMs: number[];
  /** Block created -> its route in the first other kernel (what BGP itself adds is the rest). */
  firstKernelMs: number[];
  p50Ms: number;
  maxMs: number;
}

async function hasRoute(ns: string, cidr: string): Promise<boolean> {
  const { stdout } = await run("ip", ["-n", ns, "route", "show", cidr, "proto", String(ROUTE_PROTOCOL_BGP)]);
  return stdout.trim().length > 0;
}

/** When the owner's agent logged its BIRD reconfiguration after `since` (log times are local HH:MM:SS.mmm). */
function ownerReconfiguredAt(logFile: string, since: number): number | undefined {
  const day = new Date(since);
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    const m = /^(\d\d):(\d\d):(\d\d)\.(\d{3}) .*BIRD reconfigured sessions=/.exec(line);
    if (!m) continue;
    const at = new Date(day);
    at.setHours(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]));
    if (at.getTime() >= since) return at.getTime();
  }
  return undefined;
}

async function benchMode(
  mode: "mesh" | "rr",
  n: number,
  rounds: number,
  cp: Awaited<ReturnType<typeof startControlPlane>>,
): Promise<ModeResult> {
  const id = `wbb${process.pid}${mode === "mesh" ? "m" : "r"}`;
  const runDir = join(tmpdir(), `weft-${id}`);
  const net = new ClusterNetwork({ id, runDir, cp, routeReflectors: mode === "rr" ? 2 : 0 });
  const second = mode === "mesh" ? 0 : 1;
  const poolName = `${id}-pool`;
  const cidrBase = `10.${240 + second}`;
  const roundCIDRs: string[] = [];
  try {
    await net.createPool(net.pool(poolName, `${cidrBase}.0.0/16`, "bgp"));
    const t0 = performance.now();
    await net.up(n);
    const names = [...net.topo.nodes.keys()];
    const reflectors = new Set(mode === "rr" ? names.slice(0, 2) : []);
    const expectedPerNode = (x: string) => (mode === "mesh" ? n - 1 : reflectors.has(x) ? n - 1 : 2);
    let lastReport = performance.now();
    await waitFor(
      `${n} nodes with every session Established`,
      async () => {
        let done = 0;
        let established = 0;
        let configured = 0;
        for (const x of names) {
          const s = (await net.store.get("NodeNetworkStatus", x))?.status?.bgpSessions ?? [];
          established += s.filter((y) => y.state === "Established").length;
          configured += s.length;
          if (s.length === expectedPerNode(x) && s.every((y) => y.state === "Established")) done++;
        }
        if (performance.now() - lastReport > 15_000) {
          lastReport = performance.now();
          console.error(
            `${mode} N=${n} after ${Math.round((lastReport - t0) / 1000)} s: ${done}/${n} nodes done; sessions (per side) ${established} established of ${configured} reported`,
          );
        }
        return done === n ? true : undefined;
      },
      600_000,
      1000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${net.logTails(5)}`);
    });
    const upMs = performance.now() - t0;
    let perNode = 0;
    for (const x of names) perNode += expectedPerNode(x);
    const sessions = perNode / 2;
    const expectedSessions = mode === "mesh" ? (n * (n - 1)) / 2 : 2 * n - 3;

    const convergeMs: number[] = [];
    const firstMs: number[] = [];
    // blocks for the rounds: free /26s from the top of the pool (the nodes' own claims are random)
    const taken = new Set((await net.store.list("IPAMBlock")).items.map((b) => b.spec.cidr));
    const free: string[] = [];
    for (let third = 255; free.length < rounds && third >= 0; third--)
      for (const fourth of [192, 128, 64, 0]) {
        const c = `${cidrBase}.${third}.${fourth}/26`;
        if (!taken.has(c) && free.length < rounds) free.push(c);
      }
    roundCIDRs.push(...free);
    for (let r = 0; r < rounds; r++) {
      const owner = names[(r * 3 + 2) % n] as string;
      const cidr = free[r] as string;
      const others = names.filter((x) => x !== owner).map((x) => net.topo.nodes.get(x)?.ns as string);
      const start = performance.now();
      const startWall = Date.now();
      let first: number | undefined;
      await net.store.create("IPAMBlock", {
        apiVersion: "weft.dev/v1alpha1",
        kind: "IPAMBlock",
        metadata: { name: blockName(cidr) },
        spec: { cidr, pool: poolName, affinity: owner, allocations: [], sequence: 0 },
      });
      const pending = new Set(others);
      await waitFor(
        `${cidr} in every other kernel`,
        async () => {
          await Promise.all(
            [...pending].map(async (ns) => {
              if (await hasRoute(ns, cidr)) pending.delete(ns);
            }),
          );
          if (first === undefined && pending.size < others.length) first = performance.now() - start;
          return pending.size === 0 ? true : undefined;
        },
        60_000,
        10,
      );
      convergeMs.push(Math.round(performance.now() - start));
      firstMs.push(Math.round(first ?? performance.now() - start));
      const reconfigured = ownerReconfiguredAt(join(runDir, `agent-${owner}.log`), startWall);
      console.error(
        `${mode} round ${r + 1}: owner ${owner}'s BIRD reconfigured ${reconfigured === undefined ? "?" : reconfigured - startWall} ms after the block was created; first kernel ${firstMs[r]} ms, all ${convergeMs[r]} ms`,
      );
    }
    const sorted = [...convergeMs].sort((a, b) => a - b);
    const result: ModeResult = {
      mode,
      nodes: n,
      sessions,
      expectedSessions,
      upMs: Math.round(upMs),
      convergeMs,
      firstKernelMs: firstMs,
      p50Ms: sorted[Math.floor(sorted.length / 2)] ?? 0,
      maxMs: sorted[sorted.length - 1] ?? 0,
    };
    console.log(
      `${mode.padEnd(4)} N=${n}: ${sessions} sessions (expected ${expectedSessions}); all up in ${result.upMs} ms; new block in every kernel p50 ${result.p50Ms} ms, max ${result.maxMs} ms (first kernel ${firstMs.join("/")} ms)`,
    );
    return result;
  } finally {
    for (const c of roundCIDRs) await net.store.delete("IPAMBlock", blockName(c)).catch(() => undefined);
    await net.destroy().catch((err: unknown) => console.error(`cleanup: ${String(err)}`));
    rmSync(runDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { nodes: { type: "string", default: "50" }, rounds: { type: "string", default: "5" } },
  });
  requireRoot("bench/bgp");
  const n = Number(values.nodes);
  const rounds = Number(values.rounds);
  // every node's namespace holds an ARP entry for every other node, all in one kernel table
  const neighbors = ensureNeighborCapacity(n * n + 1024);
  if (neighbors.raised)
    console.error(`bench/bgp: ARP table limits raised for ${n} nodes (restored at the end)`);
  const cp = await startControlPlane({ ownerPid: process.pid }).catch((err: unknown) => {
    neighbors.restore();
    throw err;
  });
  try {
    const mesh = await benchMode("mesh", n, rounds, cp);
    const rr = await benchMode("rr", n, rounds, cp);
    const targetMs = 3000;
    console.log(
      JSON.stringify({
        bench: "bgp",
        nodes: n,
        mesh,
        rr,
        sessionRatio: Math.round((rr.sessions / mesh.sessions) * 1000) / 1000,
        targetMs,
        ok:
          mesh.sessions === mesh.expectedSessions &&
          rr.sessions === rr.expectedSessions &&
          mesh.maxMs < targetMs &&
          rr.maxMs < targetMs,
      }),
    );
  } finally {
    await stopControlPlane(cp);
    neighbors.restore();
  }
}

main().catch((err: unknown) => {
  console.error(`bench/bgp: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
