import type { BlockAllocation, IPAMBlockSpec, IPPool } from "../api/index.js";
import { type Family, familyLabel, tryParseIP } from "../net/index.js";
import type { NodeRef } from "./affinity.js";
import type { PoolChoice } from "./annotations.js";
import { type AssignRequest, holderAt, isReservedHandle, newBlockSpec, ordinalOf } from "./block.js";
import { poolProblem } from "./choice.js";
import { IpamError } from "./errors.js";
import { blockCidrFor, blockIndexOf, parsePool, poolContains } from "./pool.js";

/**
 * Where a pod's fixed address (weft.dev/ip-addresses) comes from: the block that holds it, which
 * the node claims when nobody has, uses when it is the node's own, and borrows from when it is
 * another node's and the pool allows borrowing (strictAffinity false). Pure, over a snapshot.
 */
export interface FixedInput {
  /** The address, canonical text. */
  ip: string;
  /** Where it was asked for, for messages (`annotation weft.dev/ip-addresses of pod web/db-0`). */
  source: string;
  node: NodeRef;
  request: AssignRequest;
  /** Every pool (the caller's cache), deleted and disabled ones included: messages name them. */
  pools: readonly IPPool[];
  poolFilter?: (name: string) => boolean;
  /** The pools the pod names for this family, if it names any: the address must lie in one. */
  choice?: PoolChoice;
  /** The existing block of a CIDR (canonical text), if any. */
  block(cidr: string): IPAMBlockSpec | undefined;
  /** The node's own blocks (maxBlocksPerNode). */
  ownBlocks: readonly IPAMBlockSpec[];
}

export type FixedPlan =
  /** The handle holds the address already: nothing to write. */
  | { kind: "held"; pool: string; block: IPAMBlockSpec; ordinal: number }
  /**
   * Assign the ordinal in this existing block (`borrower` set: another node's block). `takeover`:
   * an earlier sandbox of the same pod holds it and gives it up in the same write.
   */
  | {
      kind: "assign";
      pool: string;
      block: IPAMBlockSpec;
      ordinal: number;
      borrower?: string;
      takeover?: string;
    }
  /** Create the block with the node's affinity and the address in it: one write, the claim. */
  | { kind: "claim"; pool: string; cidr: string; block: IPAMBlockSpec; ordinal: number }
  | { kind: "error"; error: IpamError };

/** A holder as people know it: the pod, or what a reserved handle stands for. */
export function describeHolder(a: BlockAllocation, blockNode: string): string {
  if (a.namespace && a.pod)
    return `pod ${a.namespace}/${a.pod} (handle ${a.handle}, node ${a.node || blockNode})`;
  if (isReservedHandle(a.handle))
    return `${a.handle} (the VTEP address of node ${a.handle.slice(a.handle.indexOf(".") + 1)})`;
  return `handle ${a.handle}`;
}

export function planFixed(input: FixedInput): FixedPlan {
  const { ip, node, request } = input;
  const fail = (code: ConstructorParameters<typeof IpamError>[0], msg: string, pools: string[] = []) => ({
    kind: "error" as const,
    error: new IpamError(code, `${input.source}: ${msg}`, pools, node.name),
  });
  const addr = tryParseIP(ip);
  if (!addr) return fail("InvalidAnnotation", `${JSON.stringify(ip)} is not an IPv4 or IPv6 address`);
  const family: Family = addr.family;
  const ok = (name: string) => !input.poolFilter || input.poolFilter(name);
  const containing = input.pools.filter((p) => {
    if (!ok(p.metadata.name)) return false;
    try {
      return poolContains(parsePool({ name: p.metadata.name, spec: p.spec }), ip);
    } catch {
      return false;
    }
  });
  if (containing.length === 0) {
    return fail("AddressOutsidePools", `${ip} lies outside every ${familyLabel(family)} IPPool`);
  }
  // Of overlapping pools the one in use (not shadowed, not deleted) holds the address.
  const problems = containing.map((p) => ({
    pool: p,
    problem: poolProblem(p.metadata.name, input.pools, node, family, input.poolFilter),
  }));
  const usable = problems.find((x) => x.problem === undefined);
  if (!usable) {
    const first = problems[0]!;
    return fail("PoolNotUsable", `${ip} lies in ${first.problem}`, [first.pool.metadata.name]);
  }
  const poolName = usable.pool.metadata.name;
  if (input.choice && !input.choice.names.includes(poolName)) {
    return fail(
      "PoolNotUsable",
      `${ip} lies in pool ${poolName}, but ${input.choice.source} names only ${input.choice.names.join(", ")}`,
      [poolName],
    );
  }
  const pool = parsePool({ name: poolName, spec: usable.pool.spec });
  const cidr = blockCidrFor(pool, ip)!;
  const existing = input.block(cidr);
  if (existing) {
    const ordinal = ordinalOf(existing, ip)!;
    const holder = holderAt(existing, ordinal);
    const mine = existing.affinity === node.name;
    let takeover: string | undefined;
    if (holder) {
      if (holder.handle === request.handle) return { kind: "held", pool: poolName, block: existing, ordinal };
      const samePod =
        request.namespace !== undefined &&
        request.pod !== undefined &&
        request.pod !== "" &&
        holder.namespace === request.namespace &&
        holder.pod === request.pod;
      // An earlier sandbox of this very pod (a restart whose release never came) gives way, if
      // this node may write that allocation: in its own block, or one it borrowed itself.
      if (samePod && (mine || holder.node === node.name)) takeover = holder.handle;
      else {
        return fail("AddressInUse", `${ip} is in use by ${describeHolder(holder, existing.affinity)}`, [
          poolName,
        ]);
      }
    }
    if (mine)
      return { kind: "assign", pool: poolName, block: existing, ordinal, ...(takeover ? { takeover } : {}) };
    if (!existing.affinity) {
      return fail(
        "AddressUnavailable",
        `${ip} lies in block ${existing.cidr}, which no node owns; it is deleted or claimed again once empty`,
        [poolName],
      );
    }
    if (pool.strictAffinity || pool.allocation === "NodeSubnet") {
      const why =
        pool.allocation === "NodeSubnet"
          ? `pool ${poolName} gives every node its own subnet`
          : `pool ${poolName} has strictAffinity: true (no borrowing)`;
      return fail(
        "AddressUnavailable",
        `${ip} lies in block ${existing.cidr} of node ${existing.affinity}; node ${node.name} may not take it: ${why}`,
        [poolName],
      );
    }
    return {
      kind: "assign",
      pool: poolName,
      block: existing,
      ordinal,
      borrower: node.name,
      ...(takeover ? { takeover } : {}),
    };
  }
  const own = input.ownBlocks.filter(
    (b) => b.affinity === node.name && b.pool === poolName && blockIndexOf(pool, b.cidr) !== undefined,
  );
  if (pool.allocation === "NodeSubnet") {
    const subnet = own.map((b) => b.cidr).join(", ") || "none yet";
    return fail(
      "AddressUnavailable",
      `${ip} lies outside the subnet of node ${node.name} (${subnet}); pool ${poolName} gives every node one subnet, claimed at node join`,
      [poolName],
    );
  }
  if (pool.maxBlocksPerNode !== undefined && own.length >= pool.maxBlocksPerNode) {
    return fail(
      "AddressUnavailable",
      `${ip} lies in block ${cidr}, which node ${node.name} would have to claim, but it holds maxBlocksPerNode=${pool.maxBlocksPerNode} blocks of pool ${poolName}`,
      [poolName],
    );
  }
  const block = newBlockSpec(cidr, poolName, node.name);
  return { kind: "claim", pool: poolName, cidr, block, ordinal: ordinalOf(block, ip)! };
}

/** The family of a canonical address text. */
export function familyOfAddress(ip: string): Family | undefined {
  return tryParseIP(ip)?.family;
}
