import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { BGPSessionStatus } from "../../api/nodenetworkstatus.js";
import { parseShowProtocols } from "../../bgp/birdc.js";
import { ROUTE_PROTOCOL_BGP } from "../../bgp/render.js";
import type { ClusterNetwork } from "../../devenv/clusternet.js";
import { waitFor } from "../../devenv/procs.js";
import { ip } from "../../devenv/topology.js";

/** Helpers shared by the BGP end-to-end tests (ClusterNetwork with real agents running BIRD). */

export function requireBird(): void {
  for (const cmd of ["bird", "birdc"]) {
    try {
      execFileSync(cmd, ["--version"], { stdio: "pipe" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        assert.fail(`${cmd} not found: install BIRD 2 (apt-get install bird2)`);
    }
  }
}

/** A pool range unique per test process, away from the ranges other tests use. */
export function bgpTestCIDR(salt = 0): string {
  return `10.${128 + ((process.pid + salt) % 64)}.0.0/16`;
}

export interface KernelRoute {
  dst: string;
  gateway?: string;
  protocol?: string;
}

/** Routes BIRD installed in a node's kernel (route protocol 12), by destination. */
export async function bgpRoutes(net: ClusterNetwork, node: string): Promise<Map<string, KernelRoute>> {
  const ns = net.topo.nodes.get(node)?.ns as string;
  const out = JSON.parse(
    await ip(["-n", ns, "-json", "route", "show", "proto", String(ROUTE_PROTOCOL_BGP)]),
  ) as KernelRoute[];
  return new Map(out.map((r) => [r.dst, r]));
}

/**
 * Waits until each node reports exactly `expected(node)` sessions, all Established (and meeting
 * `accept`: BIRD feeds a session's exports after it comes up, and status is sampled), and BGP=True.
 */
export async function waitSessions(
  net: ClusterNetwork,
  expected: (node: string) => number,
  timeoutMs = 90_000,
  accept: (s: BGPSessionStatus) => boolean = () => true,
): Promise<Map<string, BGPSessionStatus[]>> {
  const names = [...net.topo.nodes.keys()];
  try {
    return await waitFor(
      "every node's BGP sessions Established in NodeNetworkStatus",
      async () => {
        const out = new Map<string, BGPSessionStatus[]>();
        for (const n of names) {
          const nns = await net.store.get("NodeNetworkStatus", n);
          const s = nns?.status?.bgpSessions ?? [];
          const bgp = nns?.status?.conditions?.find((c) => c.type === "BGP");
          if (s.length !== expected(n) || !s.every((x) => x.state === "Established" && accept(x)))
            return undefined;
          if (bgp?.status !== "True") return undefined;
          out.set(n, s);
        }
        return out;
      },
      timeoutMs,
      500,
    );
  } catch (err) {
    const lines: string[] = [];
    for (const n of names) {
      const nns = await net.store.get("NodeNetworkStatus", n);
      lines.push(
        `${n}: ${JSON.stringify(nns?.status?.conditions?.find((c) => c.type === "BGP"))} ${JSON.stringify(nns?.status?.bgpSessions?.map((s) => `${s.peer}:${s.state}`))}`,
      );
    }
    throw new Error(`${(err as Error).message}\n${lines.join("\n")}\n${net.logTails(10)}`);
  }
}

/** Every node's kernel holds every other node's blocks through BGP, via that node's underlay address. */
export async function waitAllRoutes(net: ClusterNetwork, timeoutMs = 60_000): Promise<void> {
  const blocks = (await net.store.list("IPAMBlock")).items.filter((b) => net.topo.nodes.has(b.spec.affinity));
  const names = [...net.topo.nodes.keys()];
  for (const n of names) {
    const expected = blocks.filter((b) => b.spec.affinity !== n);
    await waitFor(
      `${n}'s kernel has ${expected.length} BGP routes to the other nodes' blocks`,
      async () => {
        const routes = await bgpRoutes(net, n);
        return expected.every(
          (b) => routes.get(b.spec.cidr)?.gateway === net.topo.nodes.get(b.spec.affinity)?.underlayIP,
        )
          ? true
          : undefined;
      },
      timeoutMs,
      250,
    );
    const own = blocks.filter((b) => b.spec.affinity === n).map((b) => b.spec.cidr);
    const routes = await bgpRoutes(net, n);
    for (const c of own) assert.ok(!routes.has(c), `${n} does not learn its own block ${c} over BGP`);
  }
  assert.ok(
    names.every((n) => blocks.some((b) => b.spec.affinity === n)),
    "every node has a block",
  );
}

/** What BIRD on `node` says of its best route to `cidr` (`birdc show route for ... all`). */
export function birdRoute(net: ClusterNetwork, node: string, cidr: string): string {
  return birdc(net, node, ["show", "route", "for", cidr, "all"]);
}

/** Runs birdc against the BIRD of a node's agent. */
function birdc(net: ClusterNetwork, node: string, args: string[]): string {
  const socket = join(net.opts.runDir, node, "bird", "bird.ctl");
  return execFileSync("birdc", ["-s", socket, ...args], { encoding: "utf8" });
}

/**
 * A node's BGP sessions read from its BIRD right now (the agent's status samples BIRD, every 10 s
 * once sessions look settled): protocol name -> state, info and since.
 */
export function birdSessions(net: ClusterNetwork, node: string): Map<string, string> {
  return new Map(
    parseShowProtocols(birdc(net, node, ["show", "protocols"]))
      .filter((p) => p.proto === "BGP")
      .map((p) => [p.name, `${p.state} ${p.info} since ${p.since}`]),
  );
}

/** Distinct sessions across the cluster, from the nodes' status (a node pair counts once). */
export function distinctSessions(all: Map<string, BGPSessionStatus[]>, net: ClusterNetwork): number {
  const ipToNode = new Map([...net.topo.nodes.values()].map((n) => [n.underlayIP, n.name]));
  const pairs = new Set<string>();
  for (const [node, sessions] of all) {
    for (const s of sessions) {
      const other = ipToNode.get(s.peerIP) ?? `external:${s.peerIP}`;
      pairs.add([node, other].sort().join("|"));
    }
  }
  return pairs.size;
}

/** Every log file of the cluster (agents, controller), concatenated. */
export function allLogs(net: ClusterNetwork): string {
  const dir = net.opts.runDir;
  return readdirSync(dir)
    .filter((f) => f.endsWith(".log"))
    .map((f) => readFileSync(join(dir, f), "utf8"))
    .join("\n");
}
