import type { IPAMBlockSpec, IPReservation } from "../api/index.js";
import {
  type Address,
  type Cidr,
  cidrContains,
  cidrLast,
  FAMILY_BITS,
  formatIP,
  tryParseCidr,
  tryParseIP,
} from "../net/index.js";

/** One entry of an IPReservation, parsed. */
export interface ReservedRange {
  /** Name of the IPReservation. */
  reservation: string;
  /** The entry as written (an address or a CIDR). */
  entry: string;
  /** Its index in spec.reservedCIDRs, for messages that name the field. */
  index: number;
  cidr: Cidr;
}

/**
 * Every reserved range of the cluster. Reservations are few (Calico advises one or two objects
 * with a handful of entries), so lookups scan the list; nothing is precomputed per block.
 */
export interface ReservedSet {
  readonly ranges: readonly ReservedRange[];
}

export const NO_RESERVATIONS: ReservedSet = { ranges: [] };

/** Parses spec.reservedCIDRs of every reservation; an entry that does not parse reserves nothing. */
export function reservedSet(
  reservations: ReadonlyArray<Pick<IPReservation, "metadata" | "spec">>,
): ReservedSet {
  const ranges: ReservedRange[] = [];
  for (const r of reservations) {
    for (const [index, entry] of (r.spec?.reservedCIDRs ?? []).entries()) {
      const cidr = parseEntry(entry);
      if (cidr) ranges.push({ reservation: r.metadata.name, entry, index, cidr });
    }
  }
  return { ranges };
}

/** An address is a /32 (/128); a CIDR must be in canonical network form, as the CRD demands. */
export function parseEntry(entry: string): Cidr | undefined {
  if (typeof entry !== "string") return undefined;
  const ip = tryParseIP(entry);
  if (ip) return { family: ip.family, base: ip.value, prefix: FAMILY_BITS[ip.family] };
  return tryParseCidr(entry);
}

/** The reservation entry that covers the address, if any. */
export function reservationOf(set: ReservedSet, a: Address): ReservedRange | undefined {
  return set.ranges.find((r) => cidrContains(r.cidr, a));
}

/** Ordinals of the block that reservations cover (empty when none do). */
export function reservedOrdinals(set: ReservedSet, spec: Pick<IPAMBlockSpec, "cidr">): Set<number> {
  const out = new Set<number>();
  if (set.ranges.length === 0) return out;
  const block = tryParseCidr(spec.cidr);
  if (!block) return out;
  const first = block.base;
  const last = cidrLast(block);
  for (const r of set.ranges) {
    if (r.cidr.family !== block.family) continue;
    const lo = r.cidr.base > first ? r.cidr.base : first;
    const rl = cidrLast(r.cidr);
    const hi = rl < last ? rl : last;
    for (let v = lo; v <= hi; v++) out.add(Number(v - first));
  }
  return out;
}

/** Whether reservations cover every address of the block (claiming it would give nothing). */
export function fullyReserved(set: ReservedSet, cidr: string): boolean {
  if (set.ranges.length === 0) return false;
  const block = tryParseCidr(cidr);
  if (!block) return false;
  // One range covering the block is the case that matters; pieces adding up to a whole block
  // are counted exactly by reservedOrdinals.
  if (
    set.ranges.some(
      (r) =>
        r.cidr.family === block.family &&
        r.cidr.prefix <= block.prefix &&
        cidrContains(r.cidr, { family: block.family, value: block.base }),
    )
  )
    return true;
  const size = 2 ** (FAMILY_BITS[block.family] - block.prefix);
  return reservedOrdinals(set, { cidr }).size >= size;
}

/** What one IPReservation amounts to, against the pools and blocks of the cluster. */
export interface ReservationReport {
  /** Entries that lie outside every pool (they reserve nothing), with their index. */
  outside: Array<{ index: number; entry: string }>;
  /** Entries that do not parse (the CRD refuses them; kept for the etcd datastore). */
  invalid: Array<{ index: number; entry: string }>;
  /** Addresses of the pools the entries cover, counted once. */
  reservedAddresses: bigint;
  /** Reserved addresses that are held, in address order. */
  inUse: Array<{ ip: string; handle: string; namespace?: string; pod?: string; node?: string }>;
}

interface Interval {
  lo: bigint;
  hi: bigint;
}

function merge(intervals: Interval[]): Interval[] {
  const sorted = [...intervals].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out.at(-1);
    if (last && i.lo <= last.hi + 1n) {
      if (i.hi > last.hi) last.hi = i.hi;
    } else out.push({ ...i });
  }
  return out;
}

function overlapSize(a: Interval[], b: Interval[]): bigint {
  let total = 0n;
  for (const x of a)
    for (const y of b) {
      const lo = x.lo > y.lo ? x.lo : y.lo;
      const hi = x.hi < y.hi ? x.hi : y.hi;
      if (lo <= hi) total += hi - lo + 1n;
    }
  return total;
}

const interval = (c: Cidr): Interval => ({ lo: c.base, hi: cidrLast(c) });

export function reservationReport(
  reservation: Pick<IPReservation, "metadata" | "spec">,
  poolCidrs: readonly Cidr[],
  blocks: ReadonlyArray<Pick<IPAMBlockSpec, "cidr" | "affinity" | "allocations">>,
): ReservationReport {
  const outside: ReservationReport["outside"] = [];
  const invalid: ReservationReport["invalid"] = [];
  const ranges: ReservedRange[] = [];
  for (const [index, entry] of (reservation.spec?.reservedCIDRs ?? []).entries()) {
    const cidr = parseEntry(entry);
    if (!cidr) {
      invalid.push({ index, entry });
      continue;
    }
    if (!poolCidrs.some((p) => p.family === cidr.family && overlapSize([interval(p)], [interval(cidr)]) > 0n))
      outside.push({ index, entry });
    ranges.push({ reservation: reservation.metadata.name, entry, index, cidr });
  }
  let reservedAddresses = 0n;
  for (const family of [4, 6] as const) {
    const mine = merge(ranges.filter((r) => r.cidr.family === family).map((r) => interval(r.cidr)));
    const pools = merge(poolCidrs.filter((p) => p.family === family).map(interval));
    reservedAddresses += overlapSize(mine, pools);
  }
  const set: ReservedSet = { ranges };
  const inUse: ReservationReport["inUse"] = [];
  for (const b of blocks) {
    const ordinals = reservedOrdinals(set, b);
    if (ordinals.size === 0) continue;
    const c = tryParseCidr(b.cidr)!;
    for (const a of b.allocations) {
      if (!ordinals.has(a.ordinal)) continue;
      inUse.push({
        ip: formatIP(c.family, c.base + BigInt(a.ordinal)),
        handle: a.handle,
        ...(a.namespace ? { namespace: a.namespace } : {}),
        ...(a.pod ? { pod: a.pod } : {}),
        ...((a.node ?? b.affinity) ? { node: a.node ?? b.affinity } : {}),
      });
    }
  }
  inUse.sort((x, y) => {
    const a = tryParseIP(x.ip)!;
    const b = tryParseIP(y.ip)!;
    return a.family - b.family || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0);
  });
  return { outside, invalid, reservedAddresses, inUse };
}
