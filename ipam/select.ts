import type { IPAMBlockSpec } from "../api/index.js";
import { type Family, familyLabel } from "../net/index.js";
import { parseCidr } from "./addr.js";
import { type EligiblePools, eligiblePools, type NodeRef, ownBlocksIn } from "./affinity.js";
import { freeCount, newBlockSpec } from "./block.js";
import { IpamError } from "./errors.js";
import { type CidrSet, candidateBlocks } from "./order.js";
import { blockCount, blockIndexOf, type Pool, type PoolRef } from "./pool.js";
import { fullyReserved, type ReservedSet, reservedOrdinals } from "./reservation.js";

/**
 * Where the next address(es) of a node come from: a pure decision over a snapshot of pools and
 * blocks. The caller acts on the plan (assignInBlock + one compare-and-swap write, or one create
 * of the IPAMBlock for a claim) and plans again when the world moved under it (a conflict, or
 * AlreadyExists on a claim: add that CIDR to `claimed`).
 */
export interface PlanInput {
  family: Family;
  pools: readonly (Pool | PoolRef)[];
  node: NodeRef;
  /** The node's blocks (affinity = node). Others in the list are ignored. */
  ownBlocks: readonly IPAMBlockSpec[];
  /**
   * Canonical CIDRs of every block known to exist, whoever owns it (Set of CIDRs, or Map CIDR ->
   * affinity), and of any block no node may claim: only asked for membership, so pass the
   * informer's map as it is, no copy needed. A block missing here costs one failed create
   * (AlreadyExists) and a replan with it added.
   */
  claimed: { has(cidr: string): boolean };
  /** Other nodes' blocks; consulted only for pools with strictAffinity=false. */
  borrowable?: readonly IPAMBlockSpec[];
  /** Addresses wanted at once (group commit); a block with that much room is preferred. Default 1. */
  count?: number;
  /**
   * May a NodeSubnet pool's block be claimed? Only the controller at node join (planJoin) does
   * that; the pod path must not, or two writers could give one node two subnets.
   */
  claimNodeSubnet?: boolean;
  /** Addresses never handed out (IPReservations): skipped inside blocks; fully reserved blocks are not claimed. */
  reserved?: ReservedSet;
}

/**
 * `reserved`: the block's ordinals reservations cover (absent when none), for assignInBlock. A
 * borrow records the borrowing node on the allocation (assignInBlock's `borrower`).
 */
export type Plan =
  /** Assign in this block of the node (it has room). */
  | { kind: "useBlock"; pool: string; block: IPAMBlockSpec; reserved?: ReadonlySet<number> }
  /**
   * Create this block with the node's affinity: that create is the claim. `block` is the empty
   * spec; assign into it before creating and the claim and the first addresses are one write.
   */
  | { kind: "claim"; pool: string; cidr: string; block: IPAMBlockSpec; reserved?: ReadonlySet<number> }
  /** Take an address from another node's block (strictAffinity=false only). */
  | { kind: "borrow"; pool: string; block: IPAMBlockSpec; reserved?: ReadonlySet<number> }
  | { kind: "error"; error: IpamError };

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function cidrOrder(a: IPAMBlockSpec, b: IPAMBlockSpec): number {
  return cmpBig(parseCidr(a.cidr).base, parseCidr(b.cidr).base);
}

/** Free addresses of a block that may be handed out, and the reserved ordinals among them. */
interface Room {
  free(b: IPAMBlockSpec): number;
  reserved(b: IPAMBlockSpec): ReadonlySet<number> | undefined;
}

function roomOf(set: ReservedSet | undefined): Room {
  if (!set || set.ranges.length === 0) return { free: freeCount, reserved: () => undefined };
  const memo = new Map<string, Set<number>>();
  const reserved = (b: IPAMBlockSpec) => {
    let r = memo.get(b.cidr);
    if (!r) {
      r = reservedOrdinals(set, b);
      memo.set(b.cidr, r);
    }
    return r;
  };
  return {
    reserved: (b) => {
      const r = reserved(b);
      return r.size > 0 ? r : undefined;
    },
    free: (b) => {
      const r = reserved(b);
      if (r.size === 0) return freeCount(b);
      let heldReserved = 0;
      for (const a of b.allocations) if (r.has(a.ordinal)) heldReserved++;
      return freeCount(b) - (r.size - heldReserved);
    },
  };
}

/** Among blocks with room: the first (pool order, then address) fitting `count`, else the roomiest. */
function pickBlock(blocks: IPAMBlockSpec[], count: number, room: Room): IPAMBlockSpec | undefined {
  const withRoom = blocks.filter((b) => room.free(b) > 0);
  const fits = withRoom.find((b) => room.free(b) >= count);
  if (fits) return fits;
  let best: IPAMBlockSpec | undefined;
  for (const b of withRoom) if (!best || room.free(b) > room.free(best)) best = b;
  return best;
}

/** The plan's block with the reserved ordinals assignInBlock must skip. */
function withReserved<P extends Plan>(plan: P, room: Room): P {
  if (plan.kind === "error") return plan;
  const r = room.reserved(plan.block);
  return r ? { ...plan, reserved: r } : plan;
}

/** Existing blocks: what the caller says exists, plus the blocks it handed in. */
function existing(
  claimed: PlanInput["claimed"],
  blocks: readonly IPAMBlockSpec[],
): { has(cidr: string): boolean } {
  const extra = new Set(blocks.map((b) => b.cidr));
  return { has: (c) => claimed.has(c) || extra.has(c) };
}

function noPoolError(family: Family, node: string, eligible: EligiblePools): IpamError {
  const why = eligible.skipped.map((s) => `${s.pool}: ${s.reason}`).join("; ");
  return new IpamError(
    "NoMatchingPool",
    `no enabled ${familyLabel(family)} pool gives addresses to node ${node}` + (why ? ` (${why})` : ""),
    eligible.skipped.map((s) => s.pool),
    node,
  );
}

export function planAssignment(input: PlanInput): Plan {
  const { family, node } = input;
  const count = Math.max(1, input.count ?? 1);
  const eligible = eligiblePools(input.pools, node, family);
  if (eligible.usable.length === 0) return { kind: "error", error: noPoolError(family, node.name, eligible) };
  const pools = eligible.usable;
  const own = new Map(pools.map((p) => [p.name, ownBlocksIn(p, node.name, input.ownBlocks).sort(cidrOrder)]));

  const room = roomOf(input.reserved);
  const ownPick = pickBlock(
    pools.flatMap((p) => own.get(p.name)!),
    count,
    room,
  );
  if (ownPick) return withReserved({ kind: "useBlock", pool: ownPick.pool, block: ownPick }, room);

  const existingBlocks = existing(input.claimed, input.ownBlocks);
  const reserved = input.reserved;
  // A block that reservations cover whole would be claimed for nothing: it counts as taken.
  const taken =
    reserved && reserved.ranges.length > 0
      ? { has: (c: string) => existingBlocks.has(c) || fullyReserved(reserved, c) }
      : existingBlocks;
  const reasons: string[] = [];
  const missingSubnet: string[] = [];
  for (const pool of pools) {
    const mine = own.get(pool.name)!;
    if (pool.allocation === "NodeSubnet") {
      if (mine.length > 0) {
        reasons.push(`${pool.name}: node subnet ${mine.map((b) => b.cidr).join(", ")} is full`);
        continue;
      }
      if (!input.claimNodeSubnet) {
        missingSubnet.push(pool.name);
        reasons.push(`${pool.name}: node has no subnet yet (the controller claims it at node join)`);
        continue;
      }
    } else if (pool.maxBlocksPerNode !== undefined && mine.length >= pool.maxBlocksPerNode) {
      reasons.push(`${pool.name}: node holds maxBlocksPerNode=${pool.maxBlocksPerNode} blocks, all full`);
      continue;
    }
    const next = candidateBlocks(pool, node.name, taken, { limit: 1 }).next();
    if (!next.done) {
      return withReserved(
        {
          kind: "claim",
          pool: pool.name,
          cidr: next.value,
          block: newBlockSpec(next.value, pool.name, node.name),
        },
        room,
      );
    }
    reasons.push(`${pool.name}: all ${blockCount(pool)} /${pool.blockSize} blocks are claimed`);
  }

  for (const pool of pools) {
    if (pool.strictAffinity || pool.allocation === "NodeSubnet") continue;
    const foreign = (input.borrowable ?? [])
      .filter(
        (b) => b.pool === pool.name && b.affinity !== node.name && blockIndexOf(pool, b.cidr) !== undefined,
      )
      .sort(cidrOrder);
    const pick = pickBlock(foreign, count, room);
    if (pick) return withReserved({ kind: "borrow", pool: pool.name, block: pick }, room);
    reasons.push(`${pool.name}: no other node's block has a free address to borrow`);
  }

  const strict = pools.filter((p) => p.strictAffinity && p.allocation === "Blocks").map((p) => p.name);
  const hint = strict.length > 0 ? ` (strictAffinity is true for ${strict.join(", ")}: no borrowing)` : "";
  const names = pools.map((p) => p.name);
  if (missingSubnet.length === pools.length) {
    return {
      kind: "error",
      error: new IpamError(
        "NodeSubnetMissing",
        `node ${node.name} has no ${familyLabel(family)} subnet in pool(s) ${names.join(", ")} yet`,
        names,
        node.name,
      ),
    };
  }
  return {
    kind: "error",
    error: new IpamError(
      "Exhausted",
      `no free ${familyLabel(family)} address for node ${node.name} in pool(s) ${names.join(", ")}: ${reasons.join("; ")}${hint}`,
      names,
      node.name,
    ),
  };
}

export type DualStackPlan =
  | { kind: "plans"; plans: Partial<Record<Family, Plan>> }
  | { kind: "error"; error: IpamError };

/**
 * One plan per family that has a pool for the node: a dual-stack node's pod gets one IPv4 and
 * one IPv6 address. The pod is only started when every returned plan succeeds; a family whose
 * plan is an error fails the pod (half a dual-stack pod is worse than a clear error).
 */
export function planDualStack(input: Omit<PlanInput, "family">): DualStackPlan {
  const plans: Partial<Record<Family, Plan>> = {};
  for (const family of [4, 6] as const) {
    if (eligiblePools(input.pools, input.node, family).usable.length === 0) continue;
    plans[family] = planAssignment({ ...input, family });
  }
  if (plans[4] === undefined && plans[6] === undefined) {
    const skipped = [
      ...eligiblePools(input.pools, input.node, 4).skipped,
      ...eligiblePools(input.pools, input.node, 6).skipped,
    ];
    return { kind: "error", error: noPoolError4or6(input.node.name, skipped) };
  }
  return { kind: "plans", plans };
}

function noPoolError4or6(node: string, skipped: EligiblePools["skipped"]): IpamError {
  const why = skipped.map((s) => `${s.pool}: ${s.reason}`).join("; ");
  return new IpamError(
    "NoMatchingPool",
    `no enabled pool gives addresses to node ${node}` + (why ? ` (${why})` : ""),
    skipped.map((s) => s.pool),
    node,
  );
}

export interface JoinClaim {
  pool: string;
  cidr: string;
  /** Empty block spec with the node's affinity; add the VTEP address, then create it. */
  block: IPAMBlockSpec;
}

export interface JoinPlan {
  claims: JoinClaim[];
  errors: IpamError[];
}

/**
 * What the controller claims when a node joins: one block in every matching NodeSubnet pool the
 * node has none in (never a second), and, per family, one block of the first Blocks pool that can
 * give one when the node then still has no block of that family. Idempotent: a node that has its
 * blocks gets an empty plan.
 */
export function planJoin(
  input: Omit<PlanInput, "family" | "count" | "claimNodeSubnet" | "borrowable"> & {
    /**
     * NodeSubnet pools where the node must get one given subnet (by pool name): the one another
     * program (flanneld) already leased to it. Claimed as it is, never replaced by another.
     */
    fixedSubnets?: ReadonlyMap<string, string>;
  },
): JoinPlan {
  const claims: JoinClaim[] = [];
  const errors: IpamError[] = [];
  const added = new Set<string>();
  const base = existing(input.claimed, input.ownBlocks);
  const reserved = input.reserved;
  const blocked = (c: string) => reserved !== undefined && fullyReserved(reserved, c);
  const taken = { has: (c: string) => added.has(c) || base.has(c) || blocked(c) };
  for (const family of [4, 6] as const) {
    const { usable } = eligiblePools(input.pools, input.node, family);
    let have = 0;
    for (const pool of usable) {
      const mine = ownBlocksIn(pool, input.node.name, input.ownBlocks);
      have += mine.length;
      if (pool.allocation !== "NodeSubnet" || mine.length > 0) continue;
      const fixed = input.fixedSubnets?.get(pool.name);
      if (fixed !== undefined) {
        if (blockIndexOf(pool, fixed) === undefined || added.has(fixed) || base.has(fixed))
          errors.push(fixedTaken(pool, input.node.name, fixed));
        else {
          claims.push({
            pool: pool.name,
            cidr: fixed,
            block: newBlockSpec(fixed, pool.name, input.node.name),
          });
          added.add(fixed);
          have++;
        }
        continue;
      }
      const claim = claimIn(pool, input.node.name, taken);
      if (claim) {
        claims.push(claim);
        added.add(claim.cidr);
        have++;
      } else errors.push(exhaustedAtJoin(pool, input.node.name));
    }
    if (have > 0) continue;
    const blocksPools = usable.filter((p) => p.allocation === "Blocks");
    const claim = blocksPools.map((p) => claimIn(p, input.node.name, taken)).find((c) => c !== undefined);
    if (claim) {
      claims.push(claim);
      added.add(claim.cidr);
    } else for (const pool of blocksPools) errors.push(exhaustedAtJoin(pool, input.node.name));
  }
  return { claims, errors };
}

function claimIn(pool: Pool, node: string, taken: CidrSet): JoinClaim | undefined {
  const next = candidateBlocks(pool, node, taken, { limit: 1 }).next();
  if (next.done) return undefined;
  return { pool: pool.name, cidr: next.value, block: newBlockSpec(next.value, pool.name, node) };
}

function fixedTaken(pool: Pool, node: string, cidr: string): IpamError {
  return new IpamError(
    "Exhausted",
    `${pool.name}: node ${node} must keep subnet ${cidr} (its existing lease), but that subnet is not a free block of the pool`,
    [pool.name],
    node,
  );
}

function exhaustedAtJoin(pool: Pool, node: string): IpamError {
  return new IpamError(
    "Exhausted",
    `pool ${pool.name} has no free /${pool.blockSize} block for node ${node}: all ${blockCount(pool)} are claimed`,
    [pool.name],
    node,
  );
}
