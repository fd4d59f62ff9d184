import { createHash } from "node:crypto";
import { blockCidrAt, blockCount, blockIndexOf, type Pool } from "./pool.js";

/**
 * The order in which a node tries a pool's blocks: a keyed permutation of the block indices,
 * keyed by (pool, node). Two nodes joining at once therefore start at unrelated blocks instead of
 * both racing for block 0 (Calico's duplicate-affinity storms), while one node always gets the
 * same order, so a retry after a lost race simply moves on to its next candidate.
 *
 * The block count is always a power of two (2^k), which makes a cheap exact permutation possible:
 * a few rounds of xor-with-key, multiply-by-odd and xorshift, each a bijection on k-bit integers.
 * Nothing is materialized; candidate i is computed on demand in O(1) bigint operations.
 */
export interface OrderKey {
  bits: number;
  mask: bigint;
  shift: bigint;
  words: readonly bigint[];
}

export function orderKey(pool: Pool, node: string): OrderKey {
  const bits = pool.blockBits;
  const digest = createHash("sha512").update(`${pool.name}\u0000${node}`).digest("hex");
  const words: bigint[] = [];
  for (let i = 0; i < 4; i++) words.push(BigInt(`0x${digest.slice(i * 32, i * 32 + 32)}`));
  return {
    bits,
    mask: (1n << BigInt(bits)) - 1n,
    shift: BigInt(Math.max(1, Math.ceil(bits / 2))),
    words,
  };
}

/** The i-th candidate block index (0 <= i < blockCount) for the key; a bijection on the indices. */
export function permute(key: OrderKey, i: bigint): bigint {
  if (key.bits === 0) return 0n;
  const [w0, w1, w2, w3] = key.words as [bigint, bigint, bigint, bigint];
  const m = key.mask;
  let x = (i ^ w0) & m;
  x = (x * (w1 | 1n)) & m;
  x ^= x >> key.shift;
  x = (x * (w2 | 1n)) & m;
  x ^= x >> key.shift;
  x = (x * (w3 | 1n)) & m;
  x ^= x >> key.shift;
  return (x + w0) & m;
}

/** The i-th candidate block index of `pool` for `node`. */
export function candidateIndex(pool: Pool, node: string, i: bigint): bigint {
  return permute(orderKey(pool, node), i);
}

export interface CandidateOptions {
  /** Stop after this many candidates (default: no limit; the generator is lazy). */
  limit?: number;
  /**
   * Keyed candidates tried before falling back to a linear scan from the node's first candidate.
   * The fallback guarantees termination in O(taken + maxProbes + limit) steps when almost every
   * block of a huge pool is taken, where random probing would need ~blockCount tries.
   */
  maxProbes?: number;
  /** How many of the pool's blocks are taken, when the caller knows: a full pool then ends at once. */
  takenCount?: bigint;
}

/** Anything that answers "does this block exist?" for canonical block CIDRs (Set, Map, array). */
export type CidrSet = { has(cidr: string): boolean } | readonly string[];

function asCidrSet(t: CidrSet): { has(cidr: string): boolean } {
  return Array.isArray(t) ? new Set(t) : (t as { has(cidr: string): boolean });
}

/** Indices of the taken CIDRs that are blocks of this pool (anything else is ignored). */
export function takenIndices(pool: Pool, taken: Iterable<string>): Set<bigint> {
  const out = new Set<bigint>();
  for (const cidr of taken) {
    const i = blockIndexOf(pool, cidr);
    if (i !== undefined) out.add(i);
  }
  return out;
}

/**
 * Candidate block indices of `pool` for `node`, in the node's order, skipping those for which
 * `isTaken` holds. Every yielded index is distinct; the generator ends once every block was
 * considered (or at once when `takenCount` says the pool is full).
 */
export function* candidateIndices(
  pool: Pool,
  node: string,
  isTaken: (index: bigint) => boolean,
  opts: CandidateOptions = {},
): Generator<bigint, void, undefined> {
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  const count = blockCount(pool);
  if (limit <= 0 || (opts.takenCount !== undefined && opts.takenCount >= count)) return;
  const maxProbes = BigInt(opts.maxProbes ?? 256);
  const key = orderKey(pool, node);
  let yielded = 0;
  const probed = new Set<bigint>();
  const probes = maxProbes < count ? maxProbes : count;
  for (let i = 0n; i < probes; i++) {
    const idx = permute(key, i);
    probed.add(idx);
    if (isTaken(idx)) continue;
    yield idx;
    if (++yielded >= limit) return;
  }
  if (probes === count) return;
  // Linear scan from the first candidate: each step is either a taken block, an already-probed
  // one (at most maxProbes) or a yield.
  const start = permute(key, 0n);
  for (let n = 0n; n < count; n++) {
    const idx = (start + n) % count;
    if (probed.has(idx) || isTaken(idx)) continue;
    yield idx;
    if (++yielded >= limit) return;
  }
}

/**
 * Candidate block CIDRs of `pool` for `node`, in the node's order, skipping `taken` (canonical
 * CIDRs of blocks that exist, whoever owns them). Membership is asked per candidate, so a plan
 * costs O(candidates), not O(all blocks in the cluster).
 */
export function* candidateBlocks(
  pool: Pool,
  node: string,
  taken: CidrSet,
  opts: CandidateOptions = {},
): Generator<string, void, undefined> {
  const set = asCidrSet(taken);
  // The generator yields the index it just tested, so the CIDR text is made once per candidate.
  let last: { idx: bigint; cidr: string } = { idx: -1n, cidr: "" };
  const isTaken = (idx: bigint) => {
    last = { idx, cidr: blockCidrAt(pool, idx) };
    return set.has(last.cidr);
  };
  for (const idx of candidateIndices(pool, node, isTaken, opts)) {
    yield idx === last.idx ? last.cidr : blockCidrAt(pool, idx);
  }
}
