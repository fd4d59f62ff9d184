import type { IPAMBlock, IPPool, IPReservation } from "../api/index.js";
import { cidrsOverlap, familyOfValid, tryParseCidr } from "../net/index.js";
import { addressAt, checkBlock, isReservedHandle, RESERVED_HANDLE_PREFIXES } from "./block.js";
import { type ReservationReport, reservationReport } from "./reservation.js";

/**
 * What is wrong with a cluster's IPAM state, computed from snapshots only (no I/O): the garbage
 * collector acts on `leaked`, `weftctl ipam check` prints all of it.
 */
export interface LeakedAddress {
  block: string;
  cidr: string;
  pool: string;
  /** Node the address serves: the block's, or the borrowing node's for a borrowed address. */
  node: string;
  ip: string;
  ordinal: number;
  handle: string;
  namespace?: string;
  pod?: string;
  sequence: number;
  /** Why it counts as leaked. */
  reason: string;
}

export interface BlockProblem {
  block: string;
  cidr: string;
  pool: string;
  node: string;
  reason: string;
}

export interface Duplicate {
  /** An address held twice, or two blocks overlapping. */
  what: string;
  blocks: string[];
}

export interface AuditReport {
  leaked: LeakedAddress[];
  /** Blocks nothing keeps: no node, no pod address, or no pool. */
  orphanBlocks: BlockProblem[];
  duplicates: Duplicate[];
  /** Blocks of deleted nodes that still hold pod addresses (kept until GC frees them). */
  deletedNodeBlocks: BlockProblem[];
  /** Problems inside one block object (ordinals out of range, sequence behind). */
  invalidBlocks: BlockProblem[];
  /** Reserved addresses that are held (not a problem: holders keep them; fixed addresses may be reserved ones). */
  reservedInUse: Array<ReservationReport["inUse"][number] & { reservation: string }>;
  /** Reservation entries that reserve nothing (outside every pool). */
  reservationProblems: Array<{ reservation: string; field: string; reason: string }>;
  summary: { pools: number; blocks: number; addresses: number; problems: number };
}

export interface AuditInput {
  pools: readonly IPPool[];
  blocks: readonly IPAMBlock[];
  nodeExists(name: string): boolean;
  podExists(namespace: string, name: string): boolean;
  /**
   * The node a pod is bound to ("" when not scheduled). An address whose pod now runs on another
   * node belongs to an earlier pod of that name (a StatefulSet pod that moved without a release).
   */
  podNode?(namespace: string, name: string): string | undefined;
  /** IPReservations: `weftctl ipam check` reports reserved addresses in use and entries outside every pool. */
  reservations?: readonly IPReservation[];
}

/** Node a reserved handle belongs to (`vtep.<node>`), if it is one. */
export function reservedHandleNode(handle: string): string | undefined {
  const prefix = RESERVED_HANDLE_PREFIXES.find((p) => handle.startsWith(p));
  return prefix ? handle.slice(prefix.length) : undefined;
}

/**
 * Leaked: a pod handle whose pod does not exist, or a reserved handle whose node does not exist.
 * An allocation that names no pod and is not reserved has no owner to look up and is left alone.
 */
export function findLeaks(input: Omit<AuditInput, "pools">): LeakedAddress[] {
  const out: LeakedAddress[] = [];
  for (const b of input.blocks) {
    for (const a of b.spec.allocations) {
      let reason: string | undefined;
      if (isReservedHandle(a.handle)) {
        const node = reservedHandleNode(a.handle)!;
        if (!input.nodeExists(node)) reason = `node ${node} does not exist`;
      } else if (a.namespace && a.pod) {
        if (!input.podExists(a.namespace, a.pod)) reason = `pod ${a.namespace}/${a.pod} does not exist`;
        else {
          const runsOn = input.podNode?.(a.namespace, a.pod);
          const serves = a.node || b.spec.affinity;
          if (runsOn && serves && runsOn !== serves)
            reason = `pod ${a.namespace}/${a.pod} runs on node ${runsOn}, not on node ${serves}: the address is an earlier pod's`;
        }
      }
      if (!reason) continue;
      let ip: string;
      try {
        ip = addressAt(b.spec, a.ordinal);
      } catch {
        continue; // reported as an invalid block
      }
      const leak: LeakedAddress = {
        block: b.metadata.name,
        cidr: b.spec.cidr,
        pool: b.spec.pool,
        node: a.node || b.spec.affinity,
        ip,
        ordinal: a.ordinal,
        handle: a.handle,
        sequence: a.sequence,
        reason,
      };
      if (a.namespace) leak.namespace = a.namespace;
      if (a.pod) leak.pod = a.pod;
      out.push(leak);
    }
  }
  return out;
}

function problem(b: IPAMBlock, reason: string): BlockProblem {
  return { block: b.metadata.name, cidr: b.spec.cidr, pool: b.spec.pool, node: b.spec.affinity, reason };
}

export function audit(input: AuditInput): AuditReport {
  const poolNames = new Set(input.pools.map((p) => p.metadata.name));
  const leaked = findLeaks(input);
  const orphanBlocks: BlockProblem[] = [];
  const deletedNodeBlocks: BlockProblem[] = [];
  const invalidBlocks: BlockProblem[] = [];
  const duplicates: Duplicate[] = [];
  let addresses = 0;
  const handles = new Map<string, string[]>();
  for (const b of input.blocks) {
    addresses += b.spec.allocations.length;
    for (const p of checkBlock(b.spec)) {
      if (/held by both/.test(p)) duplicates.push({ what: p, blocks: [b.metadata.name] });
      else invalidBlocks.push(problem(b, p));
    }
    const pods = b.spec.allocations.filter((a) => !isReservedHandle(a.handle)).length;
    if (!poolNames.has(b.spec.pool)) orphanBlocks.push(problem(b, `pool ${b.spec.pool} does not exist`));
    else if (!b.spec.affinity) {
      if (pods === 0) orphanBlocks.push(problem(b, "block has no node and no pod address"));
    } else if (!input.nodeExists(b.spec.affinity)) {
      if (pods === 0)
        orphanBlocks.push(problem(b, `node ${b.spec.affinity} does not exist and no pod uses the block`));
      else
        deletedNodeBlocks.push(
          problem(b, `node ${b.spec.affinity} does not exist; ${pods} pod address(es) keep the block`),
        );
    }
    const family = familyOfValid(b.spec.cidr);
    for (const a of b.spec.allocations) {
      const key = `${a.handle}|${family}`;
      handles.set(key, [...(handles.get(key) ?? []), b.metadata.name]);
    }
  }
  for (const [key, blocks] of handles) {
    if (blocks.length > 1 && new Set(blocks).size > 1) {
      const [handle, family] = key.split("|");
      duplicates.push({ what: `handle ${handle} holds IPv${family} addresses in several blocks`, blocks });
    }
  }
  // Overlapping blocks: sort by family and start, compare neighbours.
  const parsed = input.blocks
    .map((b) => ({ b, c: tryParseCidr(b.spec.cidr) }))
    .filter((x): x is { b: IPAMBlock; c: NonNullable<typeof x.c> } => x.c !== undefined)
    .sort((x, y) => x.c.family - y.c.family || (x.c.base < y.c.base ? -1 : x.c.base > y.c.base ? 1 : 0));
  for (let i = 1; i < parsed.length; i++) {
    const a = parsed[i - 1]!;
    const b = parsed[i]!;
    if (cidrsOverlap(a.c, b.c)) {
      duplicates.push({
        what: `blocks ${a.b.spec.cidr} and ${b.b.spec.cidr} overlap`,
        blocks: [a.b.metadata.name, b.b.metadata.name],
      });
    }
  }
  const reservedInUse: AuditReport["reservedInUse"] = [];
  const reservationProblems: AuditReport["reservationProblems"] = [];
  if (input.reservations?.length) {
    const poolCidrs = input.pools.flatMap((p) => {
      const c = tryParseCidr(p.spec.cidr);
      return c ? [c] : [];
    });
    const specs = input.blocks.map((b) => b.spec);
    for (const r of input.reservations) {
      const rep = reservationReport(r, poolCidrs, specs);
      for (const u of rep.inUse) reservedInUse.push({ ...u, reservation: r.metadata.name });
      for (const o of rep.outside)
        reservationProblems.push({
          reservation: r.metadata.name,
          field: `spec.reservedCIDRs[${o.index}]`,
          reason: `${o.entry} lies outside every IPPool and reserves nothing`,
        });
      for (const o of rep.invalid)
        reservationProblems.push({
          reservation: r.metadata.name,
          field: `spec.reservedCIDRs[${o.index}]`,
          reason: `${JSON.stringify(o.entry)} is neither an address nor a CIDR`,
        });
    }
  }
  const problems =
    leaked.length +
    orphanBlocks.length +
    duplicates.length +
    deletedNodeBlocks.length +
    invalidBlocks.length +
    reservationProblems.length;
  return {
    leaked,
    orphanBlocks,
    duplicates,
    deletedNodeBlocks,
    invalidBlocks,
    reservedInUse,
    reservationProblems,
    summary: { pools: input.pools.length, blocks: input.blocks.length, addresses, problems },
  };
}
