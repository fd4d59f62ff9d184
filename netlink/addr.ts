import {
  type Address,
  canonicalCidr,
  FAMILY_BITS,
  formatV6Groups,
  hexDigit,
  parseCidr,
  parseIP,
  parseIPv4,
} from "../net/index.js";
import { AF_INET, AF_INET6 } from "./constants.js";

/**
 * Addresses between their text (net/) and the bytes the kernel carries. IPv4 takes an
 * allocation-free path: the bulk encoder converts tens of thousands of addresses.
 */

/** Address bytes as the kernel carries them (network order), with the family they imply. */
export interface IPBytes {
  family: typeof AF_INET | typeof AF_INET6;
  bytes: Buffer;
}

function toBytes(a: Address): IPBytes {
  const bytes = Buffer.allocUnsafe(a.family === 4 ? 4 : 16);
  let v = a.value;
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return { family: a.family === 4 ? AF_INET : AF_INET6, bytes };
}

/** Throws on text that is not an address. */
export function ipToBytes(ip: string): IPBytes {
  const v4 = parseIPv4(ip);
  if (v4 >= 0) {
    const bytes = Buffer.allocUnsafe(4);
    bytes.writeUInt32BE(v4, 0);
    return { family: AF_INET, bytes };
  }
  return toBytes(parseIP(ip));
}

export function bytesToIP(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new Error(`bad address length ${b.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  return formatV6Groups(groups);
}

export interface Prefix extends IPBytes {
  len: number;
}

/** A bare address is a host prefix (`10.0.0.1` -> `10.0.0.1/32`), as iproute2 reads it. */
function withLength(cidr: string): string {
  if (cidr.includes("/")) return cidr;
  return `${cidr}/${FAMILY_BITS[parseIP(cidr).family]}`;
}

/** Parses `addr/len` or a bare address (a host prefix). Host bits must be zero. */
export function parseCIDR(cidr: string): Prefix {
  const c = parseCidr(withLength(cidr));
  return { ...toBytes({ family: c.family, value: c.base }), len: c.prefix };
}

/** `addr/len` with the address in canonical form; host prefixes keep their length (iproute2 drops it). */
export function formatCIDR(bytes: Uint8Array, len: number): string {
  return `${bytesToIP(bytes)}/${len}`;
}

export function canonicalCIDR(cidr: string): string {
  return canonicalCidr(withLength(cidr));
}

export function macToBytes(mac: string): Buffer {
  const out = Buffer.allocUnsafe(6);
  writeMAC(mac, out, 0);
  return out;
}

/** Writes `aa:bb:cc:dd:ee:ff` as 6 bytes at `at`, without allocating. */
export function writeMAC(mac: string, out: Uint8Array, at: number): void {
  if (mac.length !== 17) throw new Error(`not a MAC address: ${JSON.stringify(mac)}`);
  for (let i = 0; i < 6; i++) {
    const hi = hexDigit(mac.charCodeAt(i * 3));
    const lo = hexDigit(mac.charCodeAt(i * 3 + 1));
    if (hi < 0 || lo < 0 || (i < 5 && mac.charCodeAt(i * 3 + 2) !== 58)) {
      throw new Error(`not a MAC address: ${JSON.stringify(mac)}`);
    }
    out[at + i] = (hi << 4) | lo;
  }
}

export function bytesToMAC(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(":");
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
