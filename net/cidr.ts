import { FAMILY_BITS, type Family } from "./family.js";
import { type Address, AddressError, formatIP, parseIPv4, tryParseIP } from "./ip.js";

export interface Cidr {
  family: Family;
  /** First address of the network. */
  base: bigint;
  prefix: number;
}

/** What is wrong with a CIDR text, for messages; undefined when it is a valid strict CIDR. */
type CidrFault = "no-slash" | "address" | "prefix" | "host-bits";

const PREFIX = /^(0|[1-9][0-9]{0,2})$/;

function parse(s: string, strict: boolean): Cidr | CidrFault {
  const slash = s.indexOf("/");
  if (slash < 0) return "no-slash";
  const addr = tryParseIP(s.slice(0, slash));
  if (!addr) return "address";
  const p = s.slice(slash + 1);
  if (!PREFIX.test(p)) return "prefix";
  const prefix = Number(p);
  if (prefix > FAMILY_BITS[addr.family]) return "prefix";
  const base = addr.value & networkMask(addr.family, prefix);
  if (strict && base !== addr.value) return "host-bits";
  return { family: addr.family, base, prefix };
}

/**
 * CIDRs are parsed over and over (every IPAM plan looks at every claimed block), so strict parses
 * are memoized. The cache only remembers answers of a pure function and is bounded, so it is
 * invisible except in speed; results are frozen because they are shared.
 */
const CACHE_MAX = 200_000;
const cache = new Map<string, Readonly<Cidr> | null>();

/** Parses `addr/prefix`. With `strict` (the default) host bits must be zero. */
export function tryParseCidr(s: unknown, strict = true): Cidr | undefined {
  if (typeof s !== "string") return undefined;
  if (!strict) {
    const c = parse(s, false);
    return typeof c === "string" ? undefined : c;
  }
  const hit = cache.get(s);
  if (hit !== undefined) return hit ?? undefined;
  const c = parse(s, true);
  const ok = typeof c === "string" ? undefined : c;
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(s, ok ? Object.freeze(ok) : null);
  return ok;
}

/** Like tryParseCidr; throws AddressError saying what is wrong. */
export function parseCidr(s: string, strict = true): Cidr {
  const c = tryParseCidr(s, strict);
  if (c) return c;
  const fault = parse(s, strict);
  const loose = fault === "host-bits" ? tryParseCidr(s, false) : undefined;
  const why =
    fault === "address"
      ? "not an IP address before the slash"
      : fault === "prefix"
        ? "bad prefix length"
        : loose
          ? `host bits set (did you mean ${formatCidr(loose)}?)`
          : "not an IPv4 or IPv6 CIDR";
  throw new AddressError("InvalidCidr", `invalid CIDR ${JSON.stringify(s)}: ${why}`);
}

export function formatCidr(c: Cidr): string {
  return `${formatIP(c.family, c.base)}/${c.prefix}`;
}

/**
 * Canonical text of a CIDR given in any accepted spelling (`FD00:0::/64` -> `fd00::/64`); throws
 * AddressError. An IPv4 CIDR already in canonical form is recognized without allocating.
 */
export function canonicalCidr(s: string): string {
  if (isCanonicalIPv4Cidr(s)) return s;
  return formatCidr(parseCidr(s));
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

/** An IPv4 `a.b.c.d/n` in canonical form (host bits clear), checked without allocating. */
export function isCanonicalIPv4Cidr(s: string): boolean {
  const slash = s.indexOf("/");
  if (slash < 0) return false;
  const v4 = parseIPv4(s, 0, slash);
  const digits = s.length - slash - 1;
  if (v4 < 0 || digits < 1 || digits > 2) return false;
  const d0 = s.charCodeAt(slash + 1) - 48;
  const d1 = digits === 2 ? s.charCodeAt(slash + 2) - 48 : 0;
  if (d0 < 0 || d0 > 9 || d1 < 0 || d1 > 9 || (digits === 2 && d0 === 0)) return false;
  const len = digits === 2 ? d0 * 10 + d1 : d0;
  return len <= 32 && (len === 32 || v4 % 2 ** (32 - len) === 0);
}
