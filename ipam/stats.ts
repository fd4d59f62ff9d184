import type { IPAMBlockSpec } from "../api/index.js";
import { cidrSize } from "../net/index.js";
import { blockCount, blockIndexOf, type Pool } from "./pool.js";

/** What an IPPool's status reports; totals are bigints (an IPv6 pool has more than 2^53). */
export interface PoolUsage {
  blocksUsed: number;
  blocksTotal: bigint;
  addressesUsed: number;
  addressesTotal: bigint;
  /** Every address not held by an allocation, in claimed blocks or not. */
  addressesFree: bigint;
}

export function poolUsage(pool: Pool, blocks: readonly IPAMBlockSpec[]): PoolUsage {
  let blocksUsed = 0;
  let addressesUsed = 0;
  for (const b of blocks) {
    if (b.pool !== pool.name || blockIndexOf(pool, b.cidr) === undefined) continue;
    blocksUsed++;
    addressesUsed += b.allocations.length;
  }
  const addressesTotal = cidrSize(pool.cidr);
  return {
    blocksUsed,
    blocksTotal: blockCount(pool),
    addressesUsed,
    addressesTotal,
    addressesFree: addressesTotal - BigInt(addressesUsed),
  };
}
