import type { BlockAllocation, IPAMBlockSpec } from "../api/index.js";
import { type Cidr, cidrContains, FAMILY_BITS, formatCidr, formatIP, tryParseIP } from "../net/index.js";
import { parseCidr } from "./addr.js";
import { IpamError } from "./errors.js";

/**
 * Allocation inside one block. A block spec is a value: every function returns a new spec and
 * never mutates its argument, so the caller can write the result with one compare-and-swap and
 * simply recompute from the fresh object when the write conflicts.
 *
 * Every address of a block is usable, the first and the last included: pods get /32 (/128)
 * addresses routed individually, so there is no network or broadcast address to protect (Calico
 * does the same). The only rule is that an ordinal is never held twice.
 */

/** Handle prefix of addresses the system reserves for itself (not pods). */
export const RESERVED_HANDLE_PREFIXES: readonly string[] = ["vtep."];

/** The handle under which a node's VTEP address is held in its own block. */
export function vtepHandle(node: string): string {
  return `vtep.${node}`;
}

export function isReservedHandle(handle: string): boolean {
  return RESERVED_HANDLE_PREFIXES.some((p) => handle.startsWith(p));
}

export interface AssignRequest {
  handle: string;
  namespace?: string;
  pod?: string;
}

export interface AssignOptions {
  /** Ordinals never handed out here (IPReservations); an existing holder keeps its address. */
  reserved?: ReadonlySet<number>;
  /** The requesting node, recorded on each new allocation when it borrows from another node's block. */
  borrower?: string;
}

export interface AssignedAddress {
  handle: string;
  /** Address text (canonical). */
  ip: string;
  /** Block CIDR (canonical text) the address lives in. */
  cidr: string;
  ordinal: number;
  sequence: number;
  /** True when the handle already held this address (idempotent repeat), false when new. */
  existing: boolean;
}

export interface AssignResult {
  /** The new spec; the same object as the input when nothing changed. */
  spec: IPAMBlockSpec;
  /** One entry per request that got an address, in request order. */
  assigned: AssignedAddress[];
  /** Requests that did not fit (block full), in request order; plan again for them. */
  unassigned: AssignRequest[];
  changed: boolean;
}

export interface ReleaseResult {
  spec: IPAMBlockSpec;
  released: AssignedAddress[];
  changed: boolean;
}

export function newBlockSpec(cidr: string, pool: string, node: string): IPAMBlockSpec {
  return { cidr, pool, affinity: node, allocations: [], sequence: 0 };
}

function cidrOf(spec: IPAMBlockSpec): Cidr {
  return parseCidr(spec.cidr);
}

/** Number of addresses in the block. */
export function blockAddressCount(spec: IPAMBlockSpec): number {
  const c = cidrOf(spec);
  return 2 ** (FAMILY_BITS[c.family] - c.prefix);
}

export function usedCount(spec: IPAMBlockSpec): number {
  return spec.allocations.length;
}

export function freeCount(spec: IPAMBlockSpec): number {
  return blockAddressCount(spec) - spec.allocations.length;
}

/** No allocation at all (not even a VTEP): the block can be deleted. */
export function isEmpty(spec: IPAMBlockSpec): boolean {
  return spec.allocations.length === 0;
}

/** Only reserved handles (the node's VTEP) hold addresses: no pod uses the block. */
export function isEmptyOfPods(spec: IPAMBlockSpec): boolean {
  return spec.allocations.every((a) => isReservedHandle(a.handle));
}

export function addressAt(spec: IPAMBlockSpec, ordinal: number): string {
  const c = cidrOf(spec);
  if (!Number.isInteger(ordinal) || ordinal < 0 || ordinal >= 2 ** (FAMILY_BITS[c.family] - c.prefix)) {
    throw new RangeError(`ordinal ${ordinal} is outside block ${spec.cidr}`);
  }
  return formatIP(c.family, c.base + BigInt(ordinal));
}

/** Ordinal of `ip` in the block, or undefined when the block does not hold that address. */
export function ordinalOf(spec: IPAMBlockSpec, ip: string): number | undefined {
  const c = cidrOf(spec);
  const a = tryParseIP(ip);
  if (!a || !cidrContains(c, a)) return undefined;
  return Number(a.value - c.base);
}

function toAssigned(spec: IPAMBlockSpec, c: Cidr, a: BlockAllocation, existing: boolean): AssignedAddress {
  return {
    handle: a.handle,
    ip: formatIP(c.family, c.base + BigInt(a.ordinal)),
    cidr: spec.cidr,
    ordinal: a.ordinal,
    sequence: a.sequence,
    existing,
  };
}

/** Allocations of `handle` in the block (normally zero or one). */
export function allocationsOf(spec: IPAMBlockSpec, handle: string): BlockAllocation[] {
  return spec.allocations.filter((a) => a.handle === handle);
}

/** Where a handle holds addresses across several blocks (e.g. all of a node's blocks). */
export function findHandle(blocks: readonly IPAMBlockSpec[], handle: string): AssignedAddress[] {
  const out: AssignedAddress[] = [];
  for (const b of blocks) {
    const own = allocationsOf(b, handle);
    if (own.length === 0) continue;
    const c = cidrOf(b);
    for (const a of own) out.push(toAssigned(b, c, a, true));
  }
  return out;
}

/**
 * Assigns addresses to several requests at once (group commit: N handles into one new spec, one
 * write). A handle that already holds an address here gets that address back and costs nothing.
 * Each new assignment increments the block's sequence and stores the new value in the allocation.
 *
 * Free ordinals are taken next-fit from a cursor at (sequence mod size): a released address is
 * reused only after the cursor has gone round the block, which keeps a just-freed address (that
 * something may still remember) out of circulation for as long as possible.
 */
export function assignInBlock(
  spec: IPAMBlockSpec,
  requests: readonly AssignRequest[],
  opts: AssignOptions = {},
): AssignResult {
  const c = cidrOf(spec);
  const size = 2 ** (FAMILY_BITS[c.family] - c.prefix);
  // Reserved ordinals count as used: the cursor steps over them like over held ones.
  const used = new Set<number>(opts.reserved);
  const byHandle = new Map<string, BlockAllocation>();
  for (const a of spec.allocations) {
    used.add(a.ordinal);
    if (!byHandle.has(a.handle)) byHandle.set(a.handle, a);
  }
  let sequence = spec.sequence;
  const added: BlockAllocation[] = [];
  const assigned: AssignedAddress[] = [];
  const unassigned: AssignRequest[] = [];
  let cursor = spec.sequence % size;
  for (const req of requests) {
    const have = byHandle.get(req.handle);
    if (have) {
      assigned.push(toAssigned(spec, c, have, !added.includes(have)));
      continue;
    }
    if (used.size >= size) {
      unassigned.push(req);
      continue;
    }
    while (used.has(cursor)) cursor = (cursor + 1) % size;
    sequence += 1;
    const alloc = newAllocation(cursor, req, sequence, opts.borrower);
    used.add(cursor);
    byHandle.set(req.handle, alloc);
    added.push(alloc);
    assigned.push(toAssigned(spec, c, alloc, false));
    cursor = (cursor + 1) % size;
  }
  if (added.length === 0) return { spec, assigned, unassigned, changed: false };
  const allocations = [...spec.allocations, ...added].sort((a, b) => a.ordinal - b.ordinal);
  return { spec: { ...spec, allocations, sequence }, assigned, unassigned, changed: true };
}

function newAllocation(
  ordinal: number,
  req: AssignRequest,
  sequence: number,
  borrower: string | undefined,
): BlockAllocation {
  const alloc: BlockAllocation = { ordinal, handle: req.handle, sequence };
  if (req.namespace !== undefined) alloc.namespace = req.namespace;
  if (req.pod !== undefined) alloc.pod = req.pod;
  if (borrower !== undefined) alloc.node = borrower;
  return alloc;
}

/** Who holds an ordinal of the block, if anyone. */
export function holderAt(spec: IPAMBlockSpec, ordinal: number): BlockAllocation | undefined {
  return spec.allocations.find((a) => a.ordinal === ordinal);
}

export type AssignAtResult =
  | { kind: "assigned"; result: AssignResult }
  /** The ordinal is held by another handle (not the one to take over). */
  | { kind: "held"; holder: BlockAllocation };

/**
 * Assigns one specific address (a pod's fixed address). A handle that holds it already gets it
 * back unchanged. `takeover` names the handle that may be replaced in the same write: an earlier
 * sandbox of the same pod whose release never came.
 */
export function assignAt(
  spec: IPAMBlockSpec,
  ordinal: number,
  req: AssignRequest,
  opts: { takeover?: string; borrower?: string } = {},
): AssignAtResult {
  const c = cidrOf(spec);
  addressAt(spec, ordinal); // range check
  const holder = holderAt(spec, ordinal);
  if (holder && holder.handle === req.handle) {
    return {
      kind: "assigned",
      result: { spec, assigned: [toAssigned(spec, c, holder, true)], unassigned: [], changed: false },
    };
  }
  if (holder && holder.handle !== opts.takeover) return { kind: "held", holder };
  const sequence = spec.sequence + 1;
  const alloc = newAllocation(ordinal, req, sequence, opts.borrower);
  // The request's handle gives up anything else it holds here: one address per handle and block.
  const rest = spec.allocations.filter((a) => a.ordinal !== ordinal && a.handle !== req.handle);
  const allocations = [...rest, alloc].sort((a, b) => a.ordinal - b.ordinal);
  return {
    kind: "assigned",
    result: {
      spec: { ...spec, allocations, sequence },
      assigned: [toAssigned(spec, c, alloc, false)],
      unassigned: [],
      changed: true,
    },
  };
}

function without(spec: IPAMBlockSpec, drop: (a: BlockAllocation) => boolean): ReleaseResult {
  const c = cidrOf(spec);
  const released = spec.allocations.filter(drop);
  if (released.length === 0) return { spec, released: [], changed: false };
  return {
    spec: { ...spec, allocations: spec.allocations.filter((a) => !drop(a)) },
    released: released.map((a) => toAssigned(spec, c, a, true)),
    changed: true,
  };
}

/** Frees every address `handle` holds in the block. Idempotent: an unknown handle changes nothing. */
export function release(spec: IPAMBlockSpec, handle: string): ReleaseResult {
  return without(spec, (a) => a.handle === handle);
}

/**
 * Frees the address at `ordinal` only if it is still held by `handle` at `sequence`: what the
 * garbage collector saw. When the address was released and handed out again in between, the
 * sequence differs and nothing is freed (a stale release must never free a live address).
 */
export function releaseIfSequence(
  spec: IPAMBlockSpec,
  handle: string,
  ordinal: number,
  sequence: number,
): ReleaseResult {
  return without(spec, (a) => a.ordinal === ordinal && a.handle === handle && a.sequence === sequence);
}

/**
 * Problems of a block object as stored (what `weftctl ipam check` reports): bad or non-canonical
 * CIDR, ordinals out of range or held twice, a handle holding two addresses, a sequence behind its
 * allocations.
 */
export function checkBlock(spec: IPAMBlockSpec): string[] {
  let c: Cidr;
  try {
    c = cidrOf(spec);
  } catch (e) {
    return [(e as Error).message];
  }
  const size = 2 ** (FAMILY_BITS[c.family] - c.prefix);
  const errs: string[] = [];
  // Two spellings of one CIDR would be two objects (names derive from the text) for one range.
  const canonical = formatCidr(c);
  if (canonical !== spec.cidr) errs.push(`block ${spec.cidr}: CIDR is not in canonical form ${canonical}`);
  const ordinals = new Map<number, string>();
  const handles = new Map<string, number>();
  for (const a of spec.allocations) {
    if (!Number.isInteger(a.ordinal) || a.ordinal < 0 || a.ordinal >= size) {
      errs.push(`block ${spec.cidr}: ordinal ${a.ordinal} (${a.handle}) is outside the block`);
      continue;
    }
    const other = ordinals.get(a.ordinal);
    if (other !== undefined) {
      errs.push(`block ${spec.cidr}: ${addressAt(spec, a.ordinal)} is held by both ${other} and ${a.handle}`);
    }
    ordinals.set(a.ordinal, a.handle);
    const prev = handles.get(a.handle);
    if (prev !== undefined) {
      errs.push(
        `block ${spec.cidr}: handle ${a.handle} holds both ${addressAt(spec, prev)} and ${addressAt(spec, a.ordinal)}`,
      );
    }
    handles.set(a.handle, a.ordinal);
    if (a.sequence > spec.sequence) {
      errs.push(
        `block ${spec.cidr}: allocation ${a.handle} has sequence ${a.sequence} > block sequence ${spec.sequence}`,
      );
    }
  }
  return errs;
}

/** Throws IpamError InvalidBlock when checkBlock finds problems. */
export function assertBlock(spec: IPAMBlockSpec): void {
  const errs = checkBlock(spec);
  if (errs.length > 0) throw new IpamError("InvalidBlock", errs.join("; "), [spec.pool]);
}

/**
 * Addresses `node` borrowed from other nodes' blocks, each as a host prefix (/32, /128) with its
 * pool: what other nodes route to this node on top of its blocks.
 */
export function borrowedAddresses(
  blocks: Iterable<IPAMBlockSpec>,
  node: string,
): Array<{ cidr: string; pool: string }> {
  const out: Array<{ cidr: string; pool: string }> = [];
  for (const b of blocks) {
    if (b.affinity === node) continue;
    for (const a of b.allocations) {
      if (a.node !== node) continue;
      const c = cidrOf(b);
      out.push({
        cidr: formatCidr({
          family: c.family,
          base: c.base + BigInt(a.ordinal),
          prefix: FAMILY_BITS[c.family],
        }),
        pool: b.pool,
      });
    }
  }
  return out.sort((x, y) => (x.cidr < y.cidr ? -1 : x.cidr > y.cidr ? 1 : 0));
}

/** Nodes that borrowed addresses of this block (its allocations naming another node). */
export function borrowersOf(spec: IPAMBlockSpec): Set<string> {
  const out = new Set<string>();
  for (const a of spec.allocations) if (a.node && a.node !== spec.affinity) out.add(a.node);
  return out;
}
