import { IPv6, Validator } from "ip-num";
import { formatV6Groups } from "../net/index.js";
import { IpamError } from "./errors.js";

/**
 * Addresses as (family, bigint) pairs. All arithmetic in the library happens on bigints so an
 * IPv6 pool is handled exactly like an IPv4 one; strings appear only at the edges, always in
 * canonical form (dotted quad; RFC 5952 for IPv6) so that CIDRs can be compared as strings and
 * used as object names.
 */
export type Family = 4 | 6;

export const FAMILY_BITS: Readonly<Record<Family, number>> = { 4: 32, 6: 128 };

export interface Address {
  family: Family;
  value: bigint;
}

export interface Cidr {
  family: Family;
  /** First address of the network. */
  base: bigint;
  prefix: number;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const V6_CHARS = /^[0-9a-fA-F:.]+$/;
const PREFIX = /^(0|[1-9][0-9]{0,2})$/;

function parseV4(s: string): bigint | undefined {
  const m = V4.exec(s);
  if (!m) return undefined;
  let v = 0n;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    // Leading zeros are ambiguous (octal in some parsers), so they are refused.
    if (part.length > 1 && part[0] === "0") return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  // Zone ids (fe80::1%eth0) are meaningless in a pool, so only plain hex/colon/dot text passes.
  if (!V6_CHARS.test(s) || !s.includes(":")) return undefined;
  if (!Validator.isValidIPv6String(s)[0]) return undefined;
  try {
    return IPv6.fromString(s).value;
  } catch {
    return undefined;
  }
}

export function tryParseIP(s: string): Address | undefined {
  const v4 = parseV4(s);
  if (v4 !== undefined) return { family: 4, value: v4 };
  const v6 = parseV6(s);
  if (v6 !== undefined) return { family: 6, value: v6 };
  return undefined;
}

export function parseIP(s: string): Address {
  const a = tryParseIP(s);
  if (!a) throw new IpamError("InvalidAddress", `invalid IP address ${JSON.stringify(s)}`);
  return a;
}

function formatV6(value: bigint): string {
  const hexAll = value.toString(16).padStart(32, "0");
  const groups: number[] = [];
  for (let i = 0; i < 32; i += 4) groups.push(Number.parseInt(hexAll.slice(i, i + 4), 16));
  return formatV6Groups(groups);
}

export function formatIP(family: Family, value: bigint): string {
  if (family === 6) return formatV6(value);
  const n = Number(value);
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/**
 * Block CIDRs are parsed over and over (every plan looks at every claimed block), so strict parses
 * are memoized. The cache only remembers answers of a pure function and is bounded, so it is
 * invisible except in speed; results are frozen because they are shared.
 */
const CIDR_CACHE_MAX = 200_000;
const cidrCache = new Map<string, Readonly<Cidr> | null>();

/** Parses `addr/prefix`. With `strict` (the default) host bits must be zero. */
export function tryParseCidr(s: string, strict = true): Cidr | undefined {
  if (!strict) return parseCidrUncached(s, false);
  const hit = cidrCache.get(s);
  if (hit !== undefined) return hit ?? undefined;
  const c = parseCidrUncached(s, true);
  if (cidrCache.size >= CIDR_CACHE_MAX) cidrCache.clear();
  cidrCache.set(s, c ? Object.freeze(c) : null);
  return c;
}

function parseCidrUncached(s: string, strict: boolean): Cidr | undefined {
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const addr = tryParseIP(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!addr || !PREFIX.test(p)) return undefined;
  const prefix = Number(p);
  const bits = FAMILY_BITS[addr.family];
  if (prefix > bits) return undefined;
  const base = addr.value & networkMask(addr.family, prefix);
  if (strict && base !== addr.value) return undefined;
  return { family: addr.family, base, prefix };
}

export function parseCidr(s: string, strict = true): Cidr {
  const c = tryParseCidr(s, strict);
  if (!c) {
    const loose = strict ? tryParseCidr(s, false) : undefined;
    const why = loose ? `host bits set (did you mean ${formatCidr(loose)}?)` : "not an IPv4 or IPv6 CIDR";
    throw new IpamError("InvalidCidr", `invalid CIDR ${JSON.stringify(s)}: ${why}`);
  }
  return c;
}

export function formatCidr(c: Cidr): string {
  return `${formatIP(c.family, c.base)}/${c.prefix}`;
}

export function networkMask(family: Family, prefix: number): bigint {
  const bits = BigInt(FAMILY_BITS[family]);
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

/** Number of addresses in the CIDR. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(FAMILY_BITS[c.family] - c.prefix);
}

export function cidrLast(c: Cidr): bigint {
  return c.base + cidrSize(c) - 1n;
}

export function cidrContains(c: Cidr, a: Address): boolean {
  return a.family === c.family && a.value >= c.base && a.value <= cidrLast(c);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base <= cidrLast(b) && b.base <= cidrLast(a);
}

/** Canonical text of a CIDR given in any accepted spelling (`FD00:0::/64` -> `fd00::/64`). */
export function canonicalCidr(s: string): string {
  return formatCidr(parseCidr(s));
}

export function familyName(f: Family): string {
  return f === 4 ? "IPv4" : "IPv6";
}
