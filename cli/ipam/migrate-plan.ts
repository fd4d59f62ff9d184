import type * as k8s from "@kubernetes/client-node";
import { ANNOTATIONS, type IPAMBlock, type IPPool } from "../../api/index.js";
import { addressAt, isReservedHandle, parsePool } from "../../ipam/index.js";
import { matchesSelector } from "../../lib/index.js";

/**
 * What moving pods from pool A to pool B involves, from a snapshot (pure): which pods hold A's
 * addresses and may be restarted, and what stands in the way (A still enabled, B unusable,
 * annotations that name A, pods nothing would recreate).
 */
export interface MigrationInput {
  from: string;
  to: string;
  /** Only addresses serving this node. */
  node?: string;
  pools: readonly IPPool[];
  blocks: readonly IPAMBlock[];
  pods: readonly k8s.V1Pod[];
  namespaces: readonly k8s.V1Namespace[];
  nodes: readonly k8s.V1Node[];
  /** Restart pods no controller recreates (bare pods) too. */
  includeUnowned?: boolean;
}

export interface Holder {
  namespace: string;
  pod: string;
  uid?: string;
  node: string;
  ip: string;
  /** Kind/name of the controller that recreates the pod, if any. */
  owner?: string;
  /** Why the pod is left alone (restart would not help or would break it); unset: restartable. */
  skip?: string;
}

export interface MigrationPlan {
  /** Blockers: with any of these, --restart does nothing. */
  errors: string[];
  warnings: string[];
  holders: Holder[];
  /** VTEP addresses of nodes in A's blocks: they move to B's when A is deleted. */
  vteps: Array<{ node: string; ip: string }>;
  /** Addresses in A whose pod no longer exists (the garbage collector frees them). */
  orphans: Array<{ ip: string; handle: string }>;
}

const poolAnnotations = [ANNOTATIONS.ipv4Pools, ANNOTATIONS.ipv6Pools];

function names(text: string | undefined): string[] {
  if (text === undefined) return [];
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

/** The annotation of `obj` that names `pool`, if one does. */
function naming(annotations: Record<string, string> | undefined, pool: string): string | undefined {
  return poolAnnotations.find((a) => names(annotations?.[a]).includes(pool));
}

function ownerOf(pod: k8s.V1Pod): string | undefined {
  const o = pod.metadata?.ownerReferences?.find((r) => r.controller);
  return o ? `${o.kind}/${o.name}` : undefined;
}

export function planMigration(input: MigrationInput): MigrationPlan {
  const { from, to } = input;
  const errors: string[] = [];
  const warnings: string[] = [];
  const a = input.pools.find((p) => p.metadata.name === from);
  const b = input.pools.find((p) => p.metadata.name === to);
  if (!a) errors.push(`pool ${from} does not exist`);
  if (!b) errors.push(`pool ${to} does not exist`);
  if (from === to) errors.push("--from and --to name the same pool");
  if (a && b) {
    const fa = parsePool({ name: from, spec: a.spec }).family;
    const fb = parsePool({ name: to, spec: b.spec }).family;
    if (fa !== fb) errors.push(`pool ${from} is IPv${fa} and pool ${to} IPv${fb}: migrate within one family`);
    if (!a.spec.disabled && !a.metadata.deletionTimestamp) {
      errors.push(
        `pool ${from} still gives out addresses, so restarted pods could come back in it; disable it first:\n` +
          `  kubectl patch ippool ${from} --type merge -p '{"spec":{"disabled":true}}'`,
      );
    }
    if (b.spec.disabled)
      errors.push(`pool ${to} is disabled: pods restarted now would get no address from it`);
    if (b.metadata.deletionTimestamp) errors.push(`pool ${to} is being deleted`);
  }
  const holders: Holder[] = [];
  const vteps: MigrationPlan["vteps"] = [];
  const orphans: MigrationPlan["orphans"] = [];
  const pods = new Map(input.pods.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, p]));
  const nsByName = new Map(input.namespaces.map((n) => [n.metadata?.name ?? "", n]));
  const nodeLabels = new Map(input.nodes.map((n) => [n.metadata?.name ?? "", n.metadata?.labels ?? {}]));
  for (const block of input.blocks) {
    if (block.spec.pool !== from) continue;
    for (const al of block.spec.allocations) {
      const node = al.node || block.spec.affinity;
      if (input.node && node !== input.node) continue;
      const ip = addressAt(block.spec, al.ordinal);
      if (isReservedHandle(al.handle)) {
        vteps.push({ node: al.handle.slice(al.handle.indexOf(".") + 1), ip });
        continue;
      }
      const pod = al.namespace && al.pod ? pods.get(`${al.namespace}/${al.pod}`) : undefined;
      if (!pod || pod.spec?.nodeName !== node) {
        orphans.push({ ip, handle: al.handle });
        continue;
      }
      const h: Holder = { namespace: al.namespace!, pod: al.pod!, node, ip };
      if (pod.metadata?.uid) h.uid = pod.metadata.uid;
      const owner = ownerOf(pod);
      if (owner) h.owner = owner;
      const podNames = naming(pod.metadata?.annotations, from);
      const nsNames = naming(nsByName.get(al.namespace!)?.metadata?.annotations, from);
      if (pod.metadata?.deletionTimestamp) h.skip = "it is being deleted already";
      else if (podNames)
        h.skip = `its ${podNames} annotation names ${from}; change it to ${to} (a pod's annotations are its controller's template)`;
      else if (nsNames && !poolAnnotations.some((x) => pod.metadata?.annotations?.[x] !== undefined))
        h.skip = `namespace ${al.namespace}'s ${nsNames} annotation names ${from}; change it to ${to}`;
      else if (!owner && !input.includeUnowned)
        h.skip = "no controller recreates it (restart it yourself, or pass --include-unowned)";
      else if (b && !matchesSelector(b.spec.nodeSelector, nodeLabels.get(node) ?? {}))
        h.skip = `pool ${to} does not give addresses to node ${node} (its nodeSelector)`;
      holders.push(h);
    }
  }
  holders.sort((x, y) => (x.namespace + x.pod < y.namespace + y.pod ? -1 : 1));
  const named = input.namespaces.filter((n) => naming(n.metadata?.annotations, from));
  for (const n of named)
    warnings.push(
      `namespace ${n.metadata?.name} names ${from} in ${naming(n.metadata?.annotations, from)}: its new pods fail while ${from} is disabled; name ${to} instead`,
    );
  return { errors, warnings, holders, vteps, orphans };
}
