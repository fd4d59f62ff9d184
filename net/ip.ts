import type { Family } from "./family.js";
import { formatV6Groups } from "./ipv6text.js";

/**
 * Addresses as (family, bigint) pairs, so IPv6 is handled exactly like IPv4. Text is accepted
 * strictly (dotted quad without leading zeros; RFC 4291 IPv6 without zone ids or whitespace) and
 * always printed canonically (RFC 5952), so addresses and CIDRs can be compared as strings, used
 * as object names, and written into configuration files without escaping.
 */
export interface Address {
  family: Family;
  value: bigint;
}

/** An address or CIDR text that is not one. */
export class AddressError extends Error {
  constructor(
    readonly code: "InvalidAddress" | "InvalidCidr",
    message: string,
  ) {
    super(message);
    this.name = "AddressError";
  }
}

/**
 * The dotted quad in s[start, end) as an unsigned 32-bit number, or -1. Allocation-free: the
 * netlink bulk encoder parses tens of thousands of addresses, and garbage dominated its time.
 */
export function parseIPv4(s: string, start = 0, end = s.length): number {
  let value = 0;
  let octet = -1;
  let dots = 0;
  let digits = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (octet < 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = -1;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      // Leading zeros are ambiguous (octal to some parsers), so they are refused.
      if (digits > 0 && octet === 0) return -1;
      octet = (octet < 0 ? 0 : octet * 10) + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || octet < 0) return -1;
  return value * 256 + octet;
}

/** The value of one hex digit character code, or -1. */
export function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** IPv6 text (with an optional trailing dotted quad) as a 128-bit number, or undefined. */
function parseIPv6(s: string): bigint | undefined {
  const n = s.length;
  if (n < 2 || n > 45) return undefined;
  const groups: number[] = [];
  let gap = -1; // where "::" stands, as an index into groups
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return undefined;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    let j = i;
    let v = 0;
    for (let h = j < n ? hexDigit(s.charCodeAt(j)) : -1; h >= 0 && j - i < 5; ) {
      v = v * 16 + h;
      j++;
      h = j < n ? hexDigit(s.charCodeAt(j)) : -1;
    }
    if (j < n && s.charCodeAt(j) === 46) {
      // a trailing dotted quad is the last two groups
      const v4 = parseIPv4(s, i, n);
      if (v4 < 0 || groups.length > 6) return undefined;
      groups.push(Math.floor(v4 / 65536), v4 % 65536);
      break;
    }
    if (j === i || j - i > 4 || groups.length === 8) return undefined;
    groups.push(v);
    if (j === n) break;
    if (s.charCodeAt(j) !== 58) return undefined;
    j++;
    if (j < n && s.charCodeAt(j) === 58) {
      if (gap >= 0) return undefined;
      gap = groups.length;
      j++;
    } else if (j === n) {
      return undefined; // a single trailing colon
    }
    i = j;
  }
  // "::" stands for at least one zero group; without it there must be exactly eight.
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) return undefined;
  let value = 0n;
  for (let k = 0; k < 8; k++) {
    const g =
      gap < 0 || k < gap ? groups[k] : k < gap + 8 - groups.length ? 0 : groups[k - 8 + groups.length];
    value = (value << 16n) | BigInt(g ?? 0);
  }
  return value;
}

/** The address, or undefined when the text (or a non-string) is not one. */
export function tryParseIP(s: unknown): Address | undefined {
  if (typeof s !== "string") return undefined;
  const v4 = parseIPv4(s);
  if (v4 >= 0) return { family: 4, value: BigInt(v4) };
  const v6 = parseIPv6(s);
  if (v6 !== undefined) return { family: 6, value: v6 };
  return undefined;
}

export function parseIP(s: string): Address {
  const a = tryParseIP(s);
  if (!a) throw new AddressError("InvalidAddress", `invalid IP address ${JSON.stringify(s)}`);
  return a;
}

export function formatIP(family: Family, value: bigint): string {
  if (family === 4) {
    const n = Number(value & 0xffffffffn);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  return formatV6Groups(groups);
}

export function formatAddress(a: Address): string {
  return formatIP(a.family, a.value);
}

/** The canonical text of an address given in any accepted spelling; throws AddressError. */
export function canonicalIP(s: string): string {
  // a dotted quad parseIPv4 accepts is already canonical
  if (parseIPv4(s) >= 0) return s;
  return formatAddress(parseIP(s));
}

/** An address with its canonical text, for code that both checks an address and prints it. */
export interface CanonicalAddress extends Address {
  text: string;
}

/** The address and its canonical text, or undefined when the value is not an address. */
export function tryCanonicalAddress(s: unknown): CanonicalAddress | undefined {
  const a = tryParseIP(s);
  return a && { ...a, text: formatAddress(a) };
}

/** IPv4 before IPv6, then numeric order. */
export function compareAddresses(a: Address, b: Address): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/** compareAddresses on text; text that is not an address sorts as a string. */
export function compareIP(a: string, b: string): number {
  const pa = tryParseIP(a);
  const pb = tryParseIP(b);
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  return compareAddresses(pa, pb);
}
