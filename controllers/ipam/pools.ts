import type { IPAMBlock } from "../../api/index.js";

/** Blocks of the pools this controller handles (all without a filter). */
export function inPools(poolFilter?: (name: string) => boolean): (b: IPAMBlock) => boolean {
  return poolFilter ? (b) => poolFilter(b.spec.pool) : () => true;
}
