import { IPv6, Validator } from "ip-num";
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

/** Characters IPv6 text may hold here: no zone id (fe80::1%eth0), no whitespace, no brackets. */
const IPV6_TEXT = /^[0-9a-fA-F:.]{2,45}$/;

/** IPv6 text (with an optional trailing dotted quad) as a 128-bit number, or undefined. */
function parseIPv6(s: string): bigint | undefined {
  if (!IPV6_TEXT.test(s) || !s.includes(":")) return undefined;
  // a trailing dotted quad follows the IPv4 rules (no leading zeros)
  if (s.includes(".") && parseIPv4(s, s.lastIndexOf(":") + 1) < 0) return undefined;
  if (!Validator.isValidIPv6String(s)[0]) return undefined;
  try {
    return IPv6.fromString(s).value;
  } catch {
    return undefined;
  }
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
