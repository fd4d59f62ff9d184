import type { IPPool } from "../api/index.js";
import { matchesSelector } from "../lib/index.js";
import { type Family, familyLabel, formatCidr } from "../net/index.js";
import type { NodeRef } from "./affinity.js";
import { POOL_ANNOTATIONS, type PoolChoice } from "./annotations.js";
import { IpamError } from "./errors.js";
import { parsePool } from "./pool.js";
import { poolView } from "./poolview.js";

/** Why a pool cannot give a node addresses right now, or undefined when it can. */
export function poolProblem(
  name: string,
  pools: readonly IPPool[],
  node: NodeRef,
  family: Family | undefined,
  filter?: (name: string) => boolean,
): string | undefined {
  const pool = pools.find((p) => p.metadata.name === name && (!filter || filter(name)));
  if (!pool) return `pool ${name} does not exist`;
  if (pool.metadata.deletionTimestamp) return `pool ${name} is being deleted`;
  const view = poolView(pools, filter);
  const bad = view.invalid.get(name);
  if (bad) return bad;
  if (view.shadowed.has(name)) {
    return `pool ${name} overlaps the older pool(s) ${view.overlaps.get(name)?.join(", ")} and is not used`;
  }
  const parsed = parsePool({ name, spec: pool.spec });
  if (family !== undefined && parsed.family !== family) {
    return (
      `pool ${name} is an ${familyLabel(parsed.family)} pool (${formatCidr(parsed.cidr)}); ` +
      `${POOL_ANNOTATIONS[family]} names ${familyLabel(family)} pools`
    );
  }
  if (parsed.disabled) return `pool ${name} is disabled (spec.disabled: true)`;
  if (!matchesSelector(parsed.nodeSelector, node.labels ?? {})) {
    return `pool ${name} does not give addresses to node ${node.name} (its spec.nodeSelector does not match the node's labels)`;
  }
  return undefined;
}

/**
 * Checks the pools a pod names for one family: every one must exist, be of the family, be
 * enabled and select the node. Any that is not is an error naming it and where it was named;
 * nothing falls back to another pool.
 */
export function checkPoolChoice(
  choice: PoolChoice,
  family: Family,
  pools: readonly IPPool[],
  node: NodeRef,
  filter?: (name: string) => boolean,
): void {
  for (const name of choice.names) {
    const problem = poolProblem(name, pools, node, family, filter);
    if (problem) {
      throw new IpamError("PoolNotUsable", `${choice.source}: ${problem}`, [name], node.name);
    }
  }
}
