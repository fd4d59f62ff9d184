import {
  type BGPConfiguration,
  type BGPPeer,
  type IPPool,
  type NodeLike,
  type SecretKeyRef,
  underlayAddresses,
} from "../api/index.js";
import { matchesSelector } from "../lib/index.js";
import type { ReflectorCandidate } from "./reflectors.js";
import type { NodeTopology, TopologyInput, TopologyNode } from "./topology.js";

/**
 * From API objects to the topology's input (pure; shared by the agent, the controller's status
 * and weftctl, so all three agree on who takes part in BGP).
 *
 * A node takes part when a BGP pool (encapsulation BGP) selects it, or when an external BGPPeer
 * (peerIP) applies to it. Limiting the node set this way keeps a VXLAN or host-gw node out of the
 * mesh, and keeps several clusters scoped by pool selectors apart on one apiserver.
 */

/** A Node with what choosing reflectors reads too: age and readiness (k8s.V1Node fits). */
export type ReflectorNodeLike = NodeLike & {
  metadata?: {
    /** A Date from the client library, a string from JSON. */
    creationTimestamp?: unknown;
  };
  status?: {
    conditions?: Array<{ type: string; status: string; lastTransitionTime?: unknown }>;
  };
};

function isoOf(t: unknown): string | undefined {
  if (t === undefined || t === null) return undefined;
  const d = t instanceof Date ? t : new Date(String(t));
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The BGP nodes as candidates for automatic route reflectors (readiness, age, zone labels). */
export function reflectorCandidates(
  input: Omit<ObjectsInput, "nodes"> & { nodes: readonly ReflectorNodeLike[] },
): ReflectorCandidate[] {
  const names = bgpNodeNames(input.nodes, input.pools, input.peers);
  const out: ReflectorCandidate[] = [];
  for (const n of input.nodes) {
    const name = n.metadata?.name;
    if (!name || !names.has(name)) continue;
    const ready = n.status?.conditions?.find((c) => c.type === "Ready");
    const u = underlayAddresses(n);
    const created = isoOf(n.metadata?.creationTimestamp);
    const since = isoOf(ready?.lastTransitionTime);
    out.push({
      name,
      labels: n.metadata?.labels ?? {},
      annotations: n.metadata?.annotations ?? {},
      ...(ready ? { ready: ready.status === "True" } : {}),
      ...(since ? { readySince: since } : {}),
      ...(created ? { creationTimestamp: created } : {}),
      deleting: Boolean(n.metadata?.deletionTimestamp),
      addressed: Boolean(u[4] || u[6]),
    });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Pools whose blocks BGP announces. Disabled pools still have blocks in use, so they count. */
export function bgpPools(pools: readonly IPPool[]): IPPool[] {
  return pools.filter((p) => p.spec?.encapsulation === "BGP");
}

function safeMatch(sel: Parameters<typeof matchesSelector>[0], labels: Record<string, string>): boolean {
  try {
    return matchesSelector(sel, labels);
  } catch {
    // an invalid selector selects nothing; computeTopology reports it on the object
    return false;
  }
}

export function topologyNodeOf(node: NodeLike): TopologyNode | undefined {
  const name = node.metadata?.name;
  if (!name) return undefined;
  const underlay = underlayAddresses(node);
  return {
    name,
    labels: node.metadata?.labels ?? {},
    annotations: node.metadata?.annotations ?? {},
    ...(underlay[4] ? { underlayIPv4: underlay[4] } : {}),
    ...(underlay[6] ? { underlayIPv6: underlay[6] } : {}),
    ...(underlay.problems.length > 0 ? { underlayProblems: underlay.problems } : {}),
  };
}

/** Names of the nodes that take part in BGP. */
export function bgpNodeNames(
  nodes: readonly NodeLike[],
  pools: readonly IPPool[],
  peers: readonly BGPPeer[],
): Set<string> {
  const bgp = bgpPools(pools);
  const external = peers.filter((p) => p.spec?.peerIP !== undefined);
  const out = new Set<string>();
  for (const n of nodes) {
    const name = n.metadata?.name;
    if (!name || n.metadata?.deletionTimestamp) continue;
    const labels = n.metadata?.labels ?? {};
    const byPool = bgp.some((p) => safeMatch(p.spec.nodeSelector, labels));
    const byPeer = external.some((p) =>
      p.spec.node !== undefined ? p.spec.node === name : safeMatch(p.spec.nodeSelector, labels),
    );
    if (byPool || byPeer) out.add(name);
  }
  return out;
}

export interface ObjectsInput {
  nodes: readonly NodeLike[];
  pools: readonly IPPool[];
  peers: readonly BGPPeer[];
  config?: BGPConfiguration;
}

/** The topology input for the nodes that take part, sorted so every caller computes the same. */
export function topologyInputFrom(input: ObjectsInput): TopologyInput {
  const names = bgpNodeNames(input.nodes, input.pools, input.peers);
  const nodes = input.nodes
    .filter((n) => names.has(n.metadata?.name ?? ""))
    .map(topologyNodeOf)
    .filter((n): n is TopologyNode => n !== undefined)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    nodes,
    peers: [...input.peers],
    ...(input.config ? { config: input.config } : {}),
  };
}

/** The Secret keys one node's sessions need (each once). */
export function referencedSecrets(node: NodeTopology | undefined): SecretKeyRef[] {
  const seen = new Map<string, SecretKeyRef>();
  for (const s of node?.sessions ?? []) {
    if (!s.password) continue;
    const k = `${s.password.namespace ?? ""}/${s.password.name}/${s.password.key}`;
    if (!seen.has(k)) seen.set(k, s.password);
  }
  return [...seen.values()];
}

/** Pool CIDRs and this node's own blocks in BGP pools: what BIRD announces and accepts. */
export function announcements(
  node: string,
  pools: readonly IPPool[],
  blocks: ReadonlyArray<{ spec: { cidr: string; pool: string; affinity?: string } }>,
  /** Addresses the node borrowed from other nodes' blocks, as host prefixes: announced like blocks. */
  borrowed: ReadonlyArray<{ cidr: string; pool: string }> = [],
): { blocks: string[]; poolCIDRs: string[] } {
  const bgp = bgpPools(pools);
  const names = new Set(bgp.map((p) => p.metadata.name));
  return {
    blocks: [
      ...blocks.filter((b) => b.spec.affinity === node && names.has(b.spec.pool)).map((b) => b.spec.cidr),
      ...borrowed.filter((b) => names.has(b.pool)).map((b) => b.cidr),
    ].sort(),
    poolCIDRs: bgp.map((p) => p.spec.cidr).sort(),
  };
}
