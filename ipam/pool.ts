import {
  type Allocation,
  effectiveBlockSize,
  type IPPoolSpec,
  type LabelSelector,
  withPoolDefaults,
} from "../api/index.js";
import {
  type Address,
  type Cidr,
  cidrContains,
  cidrsOverlap,
  FAMILY_BITS,
  type Family,
  familyLabel,
  formatCidr,
  tryParseCidr,
  tryParseIP,
} from "../net/index.js";
import { parseCidr } from "./addr.js";
import { IpamError } from "./errors.js";

/** A pool as the API carries it: its object name and spec. */
export interface PoolRef {
  name: string;
  spec: IPPoolSpec;
}

/** A validated pool with every default applied; the only pool shape the rest of ipam/ uses. */
export interface Pool {
  name: string;
  spec: IPPoolSpec;
  family: Family;
  cidr: Cidr;
  /** Prefix length of the pool's blocks. */
  blockSize: number;
  allocation: Allocation;
  strictAffinity: boolean;
  /** Undefined: no limit (0 in the spec means the same, as in Calico). */
  maxBlocksPerNode: number | undefined;
  disabled: boolean;
  nodeSelector: LabelSelector | undefined;
  /** log2 of the number of blocks. */
  blockBits: number;
  /** Addresses per block (at most 2^12, so a number). */
  blockAddresses: number;
}

export const BLOCK_SIZE_RANGE: Readonly<Record<Family, readonly [number, number]>> = {
  4: [20, 32],
  6: [116, 128],
};

/**
 * Ranges a pool may not touch: link-local would collide with the 169.254.1.1 / fe80:: gateway
 * the pods route through; loopback and multicast are never unicast pod addresses.
 */
const FORBIDDEN: ReadonlyArray<{ cidr: Cidr; what: string }> = [
  ["169.254.0.0/16", "link-local"],
  ["fe80::/10", "link-local"],
  ["127.0.0.0/8", "loopback"],
  ["::1/128", "loopback"],
  ["224.0.0.0/4", "multicast"],
  ["ff00::/8", "multicast"],
].map(([c, what]) => ({ cidr: parseCidr(c!), what: what! }));

const ALLOCATIONS: readonly Allocation[] = ["Blocks", "NodeSubnet"];
const ENCAPSULATIONS = ["VXLAN", "HostGW", "BGP", "IPIP"];

function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v);
}

/**
 * Every problem of a pool spec, each message naming its field (empty when valid). The apiserver's
 * schema and CEL rules refuse the same things; this is the copy the controller and weftctl use.
 */
export function validatePoolSpec(spec: IPPoolSpec): string[] {
  const errs: string[] = [];
  const cidr = typeof spec.cidr === "string" ? tryParseCidr(spec.cidr) : undefined;
  if (!cidr) {
    const loose = typeof spec.cidr === "string" ? tryParseCidr(spec.cidr, false) : undefined;
    errs.push(
      loose
        ? `spec.cidr: ${spec.cidr} has host bits set (did you mean ${formatCidr(loose)}?)`
        : `spec.cidr: ${JSON.stringify(spec.cidr)} is not an IPv4 or IPv6 CIDR`,
    );
  } else {
    for (const f of FORBIDDEN) {
      if (cidrsOverlap(cidr, f.cidr))
        errs.push(`spec.cidr: ${spec.cidr} overlaps the ${f.what} range ${formatCidr(f.cidr)}`);
    }
  }
  if (spec.blockSize !== undefined && cidr) {
    const [lo, hi] = BLOCK_SIZE_RANGE[cidr.family];
    if (!isInt(spec.blockSize) || spec.blockSize < lo || spec.blockSize > hi) {
      errs.push(`spec.blockSize: ${spec.blockSize} is outside ${lo}-${hi} for ${familyLabel(cidr.family)}`);
    }
  }
  if (cidr) {
    const bs = effectiveBlockSize(spec);
    if (isInt(bs) && bs < cidr.prefix) {
      errs.push(`spec.blockSize: /${bs} blocks do not fit in the /${cidr.prefix} pool ${spec.cidr}`);
    }
  }
  if (spec.allocation !== undefined && !ALLOCATIONS.includes(spec.allocation)) {
    errs.push(`spec.allocation: ${JSON.stringify(spec.allocation)} is not one of ${ALLOCATIONS.join(", ")}`);
  }
  if (spec.encapsulation !== undefined && !ENCAPSULATIONS.includes(spec.encapsulation)) {
    errs.push(
      `spec.encapsulation: ${JSON.stringify(spec.encapsulation)} is not one of ${ENCAPSULATIONS.join(", ")}`,
    );
  }
  if (spec.encapsulation === "IPIP" && cidr?.family === 6) {
    errs.push("spec.encapsulation: IPIP carries IPv4 only; use VXLAN, HostGW or BGP for an IPv6 pool");
  }
  if (spec.maxBlocksPerNode !== undefined && (!isInt(spec.maxBlocksPerNode) || spec.maxBlocksPerNode < 0)) {
    errs.push(`spec.maxBlocksPerNode: ${spec.maxBlocksPerNode} must be an integer >= 0 (0: no limit)`);
  }
  const vni = spec.vxlan?.vni;
  if (vni !== undefined && (!isInt(vni) || vni < 1 || vni > 0xffffff)) {
    errs.push(`spec.vxlan.vni: ${vni} is outside 1-16777215`);
  }
  const port = spec.vxlan?.port;
  if (port !== undefined && (!isInt(port) || port < 1 || port > 65535)) {
    errs.push(`spec.vxlan.port: ${port} is outside 1-65535`);
  }
  return errs;
}

/** Validates and applies defaults; throws IpamError InvalidPool listing every problem. */
export function parsePool(ref: PoolRef): Pool {
  const errs = validatePoolSpec(ref.spec);
  if (errs.length > 0) {
    throw new IpamError("InvalidPool", `IPPool ${ref.name} is invalid: ${errs.join("; ")}`, [ref.name]);
  }
  const cidr = parseCidr(ref.spec.cidr);
  const spec = withPoolDefaults(ref).spec;
  const blockSize = spec.blockSize;
  const max = spec.maxBlocksPerNode;
  return {
    name: ref.name,
    spec: ref.spec,
    family: cidr.family,
    cidr,
    blockSize,
    allocation: spec.allocation,
    strictAffinity: spec.strictAffinity,
    maxBlocksPerNode: max === undefined || max === 0 ? undefined : max,
    disabled: spec.disabled,
    nodeSelector: ref.spec.nodeSelector,
    blockBits: blockSize - cidr.prefix,
    blockAddresses: 2 ** (FAMILY_BITS[cidr.family] - blockSize),
  };
}

/** Number of blocks in the pool; a bigint because an IPv6 /48 with /122 blocks has 2^74. */
export function blockCount(pool: Pool): bigint {
  return 1n << BigInt(pool.blockBits);
}

export function blockCidrOfIndex(pool: Pool, index: bigint): Cidr {
  if (index < 0n || index >= blockCount(pool)) {
    throw new RangeError(`block index ${index} is outside pool ${pool.name} (${blockCount(pool)} blocks)`);
  }
  const shift = BigInt(FAMILY_BITS[pool.family] - pool.blockSize);
  return { family: pool.family, base: pool.cidr.base + (index << shift), prefix: pool.blockSize };
}

/** CIDR (canonical text) of the block at `index`. */
export function blockCidrAt(pool: Pool, index: bigint): string {
  return formatCidr(blockCidrOfIndex(pool, index));
}

/** Index of a block of this pool, or undefined when the CIDR is not exactly one of its blocks. */
export function blockIndexOf(pool: Pool, cidr: string): bigint | undefined {
  const c = tryParseCidr(cidr);
  if (!c || c.family !== pool.family || c.prefix !== pool.blockSize) return undefined;
  if (!cidrContains(pool.cidr, { family: c.family, value: c.base })) return undefined;
  return (c.base - pool.cidr.base) >> BigInt(FAMILY_BITS[pool.family] - pool.blockSize);
}

export function poolContainsAddress(pool: Pool, a: Address): boolean {
  return cidrContains(pool.cidr, a);
}

/** Whether the address (text) lies in the pool; false for unparsable text. */
export function poolContains(pool: Pool, ip: string): boolean {
  const a = tryParseIP(ip);
  return a !== undefined && cidrContains(pool.cidr, a);
}

/** The block CIDR of this pool that holds `ip`, or undefined when the pool does not hold it. */
export function blockCidrFor(pool: Pool, ip: string): string | undefined {
  const a = tryParseIP(ip);
  if (!a || !cidrContains(pool.cidr, a)) return undefined;
  const shift = BigInt(FAMILY_BITS[pool.family] - pool.blockSize);
  return blockCidrAt(pool, (a.value - pool.cidr.base) >> shift);
}

export function poolsOverlap(a: Pool, b: Pool): boolean {
  return cidrsOverlap(a.cidr, b.cidr);
}

/**
 * For every pool that overlaps another, the names of the others (what the Overlapping condition
 * names). Pairwise: clusters have a handful of pools, not thousands.
 */
export function findOverlaps(pools: readonly Pool[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < pools.length; i++) {
    for (let j = i + 1; j < pools.length; j++) {
      const a = pools[i]!;
      const b = pools[j]!;
      if (!poolsOverlap(a, b)) continue;
      out.set(a.name, [...(out.get(a.name) ?? []), b.name]);
      out.set(b.name, [...(out.get(b.name) ?? []), a.name]);
    }
  }
  for (const v of out.values()) v.sort();
  return out;
}
