import type { IPAMBlockSpec } from "../api/index.js";
import { matchesSelector } from "../lib/index.js";
import type { Family } from "../net/index.js";
import { isIpamError } from "./errors.js";
import { blockIndexOf, type Pool, type PoolRef, parsePool } from "./pool.js";

/** The node as IPAM sees it. */
export interface NodeRef {
  name: string;
  labels?: Record<string, string>;
}

export interface SkippedPool {
  pool: string;
  reason: string;
}

export interface EligiblePools {
  /** Pools this node may take new addresses from, in a stable order (by name). */
  usable: Pool[];
  /** Pools of the family that are not usable, with why (for error messages and status). */
  skipped: SkippedPool[];
}

export function toPool(p: Pool | PoolRef): Pool {
  return "family" in p ? p : parsePool(p);
}

/**
 * The pools of `family` that give addresses to `node`: valid, not disabled, nodeSelector
 * matching. Invalid pools are skipped with their validation message rather than failing the
 * whole decision: one bad pool must not stop allocation from the good ones.
 */
export function eligiblePools(
  pools: readonly (Pool | PoolRef)[],
  node: NodeRef,
  family: Family,
): EligiblePools {
  const usable: Pool[] = [];
  const skipped: SkippedPool[] = [];
  for (const ref of pools) {
    let pool: Pool;
    try {
      pool = toPool(ref);
    } catch (e) {
      if (!isIpamError(e)) throw e;
      skipped.push({ pool: ref.name, reason: e.message });
      continue;
    }
    if (pool.family !== family) continue;
    if (pool.disabled) skipped.push({ pool: pool.name, reason: "disabled" });
    else if (!matchesSelector(pool.nodeSelector, node.labels ?? {})) {
      skipped.push({ pool: pool.name, reason: `nodeSelector does not match node ${node.name}` });
    } else usable.push(pool);
  }
  usable.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  skipped.sort((a, b) => (a.pool < b.pool ? -1 : a.pool > b.pool ? 1 : 0));
  return { usable, skipped };
}

/** Families for which at least one pool gives the node addresses (both: the node is dual-stack). */
export function matchingFamilies(pools: readonly (Pool | PoolRef)[], node: NodeRef): Family[] {
  return ([4, 6] as const).filter((f) => eligiblePools(pools, node, f).usable.length > 0);
}

/** The node's blocks that belong to `pool` (by name and by CIDR). */
export function ownBlocksIn(pool: Pool, node: string, blocks: readonly IPAMBlockSpec[]): IPAMBlockSpec[] {
  return blocks.filter(
    (b) => b.affinity === node && b.pool === pool.name && blockIndexOf(pool, b.cidr) !== undefined,
  );
}
