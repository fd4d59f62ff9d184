import type { IPPool } from "../api/index.js";
import { isIpamError } from "./errors.js";
import { findOverlaps, type Pool, type PoolRef, parsePool } from "./pool.js";

/**
 * Which pools may hand out new addresses. A pool being deleted never does (it drains), and of two
 * overlapping pools only the older one (creation time, then name) is used: a new pool that
 * overlaps a pool in use must not break it, so the newcomer is the one marked Overlapping.
 */
export interface PoolView {
  /** Pools that give new addresses (disabled pools included: the planner skips them with a reason). */
  usable: PoolRef[];
  /** Pool name -> names of the pools it overlaps. */
  overlaps: Map<string, string[]>;
  /** Pools not used because they overlap an older pool. */
  shadowed: Set<string>;
  /** Pools whose spec is invalid, with the validation message. */
  invalid: Map<string, string>;
}

function older(a: IPPool, b: IPPool): boolean {
  const ta = a.metadata.creationTimestamp ?? "";
  const tb = b.metadata.creationTimestamp ?? "";
  if (ta !== tb) return ta < tb;
  return a.metadata.name < b.metadata.name;
}

export function poolView(pools: readonly IPPool[], filter?: (name: string) => boolean): PoolView {
  const mine = pools.filter((p) => !filter || filter(p.metadata.name));
  const parsed: Pool[] = [];
  const byName = new Map<string, IPPool>();
  const invalid = new Map<string, string>();
  for (const p of mine) {
    byName.set(p.metadata.name, p);
    try {
      parsed.push(parsePool({ name: p.metadata.name, spec: p.spec }));
    } catch (e) {
      if (!isIpamError(e)) throw e;
      invalid.set(p.metadata.name, e.message);
    }
  }
  const overlaps = findOverlaps(parsed);
  const shadowed = new Set<string>();
  for (const [name, others] of overlaps) {
    const self = byName.get(name)!;
    // Shadowed when any pool it overlaps is older and not itself being deleted.
    if (others.some((o) => older(byName.get(o)!, self))) shadowed.add(name);
  }
  const usable = mine
    .filter(
      (p) => !p.metadata.deletionTimestamp && !shadowed.has(p.metadata.name) && !invalid.has(p.metadata.name),
    )
    .map((p) => ({ name: p.metadata.name, spec: p.spec }));
  return { usable, overlaps, shadowed, invalid };
}
