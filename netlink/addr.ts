import { isIPv6 } from "node:net";
import { formatV6Groups } from "../net/index.js";
import { AF_INET, AF_INET6 } from "./constants.js";

/** Address bytes as the kernel carries them (network order), with the family they imply. */
export interface IPBytes {
  family: typeof AF_INET | typeof AF_INET6;
  bytes: Buffer;
}

/**
 * Dotted-quad IPv4 in s[start, end) as an unsigned 32-bit number, or -1. Allocation-free: the bulk
 * path encodes tens of thousands of addresses, and garbage dominated its time before this.
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
      if (digits > 0 && octet === 0) return -1; // no leading zeros, as node's isIPv4
      octet = (octet < 0 ? 0 : octet * 10) + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || octet < 0) return -1;
  return value * 256 + octet;
}

export function ipToBytes(ip: string): IPBytes {
  const v4 = parseIPv4(ip);
  if (v4 >= 0) {
    const bytes = Buffer.allocUnsafe(4);
    bytes.writeUInt32BE(v4, 0);
    return { family: AF_INET, bytes };
  }
  if (isIPv6(ip)) return { family: AF_INET6, bytes: ipv6ToBytes(ip) };
  throw new Error(`not an IP address: ${JSON.stringify(ip)}`);
}

function ipv6ToBytes(ip: string): Buffer {
  let text = ip;
  const out = Buffer.alloc(16);
  // a trailing dotted quad (::ffff:1.2.3.4) is two groups
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipToBytes(v4[1]!).bytes;
    text = `${text.slice(0, -v4[1]!.length)}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return out;
}

export function bytesToIP(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new Error(`bad address length ${b.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  return formatV6Groups(groups);
}

/** The canonical text form of an address (what iproute2 prints). */
export function canonicalIP(ip: string): string {
  // a dotted quad parseIPv4 accepts (no leading zeros) is already canonical
  if (parseIPv4(ip) >= 0) return ip;
  return bytesToIP(ipToBytes(ip).bytes);
}

export interface Prefix extends IPBytes {
  len: number;
}

/** Parses `a.b.c.d/n` (a bare address is a host prefix). Host bits must be zero. */
export function parseCIDR(cidr: string): Prefix {
  const slash = cidr.indexOf("/");
  const ip = slash < 0 ? cidr : cidr.slice(0, slash);
  const { family, bytes } = ipToBytes(ip);
  const max = bytes.length * 8;
  const len = slash < 0 ? max : Number(cidr.slice(slash + 1));
  if (
    !Number.isInteger(len) ||
    len < 0 ||
    len > max ||
    (slash >= 0 && !/^\d+$/.test(cidr.slice(slash + 1)))
  ) {
    throw new Error(`bad prefix length in ${JSON.stringify(cidr)}`);
  }
  for (let bit = len; bit < max; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) throw new Error(`host bits set in ${JSON.stringify(cidr)}`);
  }
  return { family, bytes, len };
}

/** `addr/len` with the address in canonical form; host prefixes keep their length (iproute2 drops it). */
export function formatCIDR(bytes: Uint8Array, len: number): string {
  return `${bytesToIP(bytes)}/${len}`;
}

export function canonicalCIDR(cidr: string): string {
  const fast = canonicalIPv4CIDR(cidr);
  if (fast !== undefined) return fast;
  const p = parseCIDR(cidr);
  return formatCIDR(p.bytes, p.len);
}

export function macToBytes(mac: string): Buffer {
  const out = Buffer.allocUnsafe(6);
  writeMAC(mac, out, 0);
  return out;
}

const hexVal = (c: number) =>
  c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;

/** Writes `aa:bb:cc:dd:ee:ff` as 6 bytes at `at`, without allocating. */
export function writeMAC(mac: string, out: Uint8Array, at: number): void {
  if (mac.length !== 17) throw new Error(`not a MAC address: ${JSON.stringify(mac)}`);
  for (let i = 0; i < 6; i++) {
    const hi = hexVal(mac.charCodeAt(i * 3));
    const lo = hexVal(mac.charCodeAt(i * 3 + 1));
    if (hi < 0 || lo < 0 || (i < 5 && mac.charCodeAt(i * 3 + 2) !== 58)) {
      throw new Error(`not a MAC address: ${JSON.stringify(mac)}`);
    }
    out[at + i] = (hi << 4) | lo;
  }
}

export function bytesToMAC(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(":");
}

/** An IPv4 `a.b.c.d/n` already in canonical form, checked without allocating; else undefined. */
function canonicalIPv4CIDR(cidr: string): string | undefined {
  const slash = cidr.indexOf("/");
  if (slash < 0) return undefined;
  const v4 = parseIPv4(cidr, 0, slash);
  const digits = cidr.length - slash - 1;
  if (v4 < 0 || digits < 1 || digits > 2) return undefined;
  const d0 = cidr.charCodeAt(slash + 1) - 48;
  const d1 = digits === 2 ? cidr.charCodeAt(slash + 2) - 48 : 0;
  if (d0 < 0 || d0 > 9 || d1 < 0 || d1 > 9 || (digits === 2 && d0 === 0)) return undefined;
  const len = digits === 2 ? d0 * 10 + d1 : d0;
  if (len > 32 || (len < 32 && v4 % 2 ** (32 - len) !== 0)) return undefined; // the slow path says why
  return cidr;
}

/** Lowercase `aa:bb:cc:dd:ee:ff`: the canonical form, checked without allocating. */
function isCanonicalMAC(mac: string): boolean {
  if (mac.length !== 17) return false;
  for (let i = 0; i < 17; i++) {
    const c = mac.charCodeAt(i);
    if (i % 3 === 2 ? c !== 58 : !((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

export function canonicalMAC(mac: string): string {
  if (isCanonicalMAC(mac)) return mac;
  return bytesToMAC(macToBytes(mac));
}
