/**
 * BGP benchmark: N nodes (network namespaces, one weft-agent with a real BIRD each), first as a
 * full mesh, then with two route reflectors, in the same run on a control plane of its own.
 * Per mode: the number of distinct sessions (mesh N(N-1)/2, reflectors 2N-3) and the convergence
 * time of a new block: IPAMBlock created for one node -> a BGP route for it in every other node's
 * kernel (target < 3 s). Ends with one JSON line.
 *
 *   node dist/bench/bgp/main.js [--nodes 10] [--rounds 5]
 */
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { ROUTE_PROTOCOL_BGP } from "../../agent/bgp/render.js";
import { blockName } from "../../api/ipamblock.js";
import { ClusterNetwork } from "../../test/harness/clusternet.js";
import { startControlPlane, stopControlPlane } from "../../test/harness/controlplane.js";
import { waitFor } from "../../test/harness/procs.js";
import { requireRoot } from "../../test/harness/topology.js";

const run = promisify(execFile);

interface ModeResult {
  mode: "mesh" | "rr";
  nodes: number;
  sessions: number;
  expectedSessions: number;
  upMs: number;
  convergeMs: number[];
  p50Ms: number;
  maxMs: number;
}

async function hasRoute(ns: string, cidr: string): Promise<boolean> {
  const { stdout } = await run("ip", ["-n", ns, "route", "show", cidr, "proto", String(ROUTE_PROTOCOL_BGP)]);
  return stdout.trim().length > 0;
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
  try {
    await net.createPool(net.pool(poolName, `${cidrBase}.0.0/16`, "bgp"));
    const t0 = performance.now();
    await net.up(n);
    const names = [...net.topo.nodes.keys()];
    const reflectors = new Set(mode === "rr" ? names.slice(0, 2) : []);
    const expectedPerNode = (x: string) => (mode === "mesh" ? n - 1 : reflectors.has(x) ? n - 1 : 2);
    await waitFor(
      `${n} nodes with every session Established`,
      async () => {
        for (const x of names) {
          const s = (await net.store.get("NodeNetworkStatus", x))?.status?.bgpSessions ?? [];
          if (s.length !== expectedPerNode(x) || s.some((y) => y.state !== "Established")) return undefined;
        }
        return true;
      },
      300_000,
      500,
    );
    const upMs = performance.now() - t0;
    let perNode = 0;
    for (const x of names) perNode += expectedPerNode(x);
    const sessions = perNode / 2;
    const expectedSessions = mode === "mesh" ? (n * (n - 1)) / 2 : 2 * n - 3;

    const convergeMs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const owner = names[(r * 3 + 2) % n] as string;
      const cidr = `${cidrBase}.${255 - r}.0/26`;
      const others = names.filter((x) => x !== owner).map((x) => net.topo.nodes.get(x)?.ns as string);
      const start = performance.now();
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
          return pending.size === 0 ? true : undefined;
        },
        60_000,
        10,
      );
      convergeMs.push(Math.round(performance.now() - start));
    }
    const sorted = [...convergeMs].sort((a, b) => a - b);
    const result: ModeResult = {
      mode,
      nodes: n,
      sessions,
      expectedSessions,
      upMs: Math.round(upMs),
      convergeMs,
      p50Ms: sorted[Math.floor(sorted.length / 2)] ?? 0,
      maxMs: sorted[sorted.length - 1] ?? 0,
    };
    console.log(
      `${mode.padEnd(4)} N=${n}: ${sessions} sessions (expected ${expectedSessions}); all up in ${result.upMs} ms; new block in every kernel p50 ${result.p50Ms} ms, max ${result.maxMs} ms`,
    );
    return result;
  } finally {
    for (let r = 0; r < rounds; r++)
      await net.store.delete("IPAMBlock", blockName(`${cidrBase}.${255 - r}.0/26`)).catch(() => undefined);
    await net.destroy().catch((err: unknown) => console.error(`cleanup: ${String(err)}`));
    rmSync(runDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { nodes: { type: "string", default: "10" }, rounds: { type: "string", default: "5" } },
  });
  requireRoot("bench/bgp");
  const n = Number(values.nodes);
  const rounds = Number(values.rounds);
  const cp = await startControlPlane({ ownerPid: process.pid });
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
  }
}

main().catch((err: unknown) => {
  console.error(`bench/bgp: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
