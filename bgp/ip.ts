import { formatV6Groups } from "../net/index.js";
/**
 * Strict IP and CIDR parsing for everything that ends up in bird.conf. Values are parsed into
 * numbers and printed back canonically, so only digits, hex letters, dots and colons can ever
 * reach the configuration (no zone ids, no whitespace, no leading zeros).
 */
export type Family = 4 | 6;

export interface ParsedIP {
  family: Family;
  value: bigint;
  /** Canonical text (dotted quad, or RFC 5952 compressed IPv6). */
  text: string;
}

export interface ParsedCIDR {
  family: Family;
  network: bigint;
  prefixLength: number;
  text: string;
}

const V4_OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseV4(s: string): bigint | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!V4_OCTET.test(p)) return undefined;
    v = (v << 8n) | BigInt(Number(p));
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  let head = s;
  let tailV4: bigint | undefined;
  if (s.includes(".")) {
    const idx = s.lastIndexOf(":");
    tailV4 = parseV4(s.slice(idx + 1));
    if (tailV4 === undefined) return undefined;
    head = `${s.slice(0, idx + 1)}0:0`;
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const toGroups = (h: string): string[] | undefined => (h === "" ? [] : h.split(":"));
  const left = toGroups(halves[0] as string);
  const right = halves.length === 2 ? toGroups(halves[1] as string) : [];
  if (!left || !right) return undefined;
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...right];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(Number.parseInt(g, 16));
  }
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

function formatV4(v: bigint): string {
  return [24n, 16n, 8n, 0n].map((sh) => String((v >> sh) & 0xffn)).join(".");
}

function formatV6(v: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  return formatV6Groups(groups);
}

export function parseIP(s: unknown): ParsedIP | undefined {
  if (typeof s !== "string" || s.length > 45) return undefined;
  const v4 = parseV4(s);
  if (v4 !== undefined) return { family: 4, value: v4, text: formatV4(v4) };
  const v6 = parseV6(s);
  if (v6 !== undefined) return { family: 6, value: v6, text: formatV6(v6) };
  return undefined;
}

/** A CIDR with its host bits clear. */
export function parseCIDR(s: unknown): ParsedCIDR | undefined {
  if (typeof s !== "string") return undefined;
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const ip = parseIP(m[1]);
  const len = Number(m[2]);
  if (!ip) return undefined;
  const bits = ip.family === 4 ? 32 : 128;
  if (len > bits) return undefined;
  const hostMask = (1n << BigInt(bits - len)) - 1n;
  if ((ip.value & hostMask) !== 0n) return undefined;
  return { family: ip.family, network: ip.value, prefixLength: len, text: `${ip.text}/${len}` };
}

export function familyOf(s: string): Family | undefined {
  return parseIP(s)?.family;
}

/** Numeric order of two addresses of the same family (for "the higher address is passive"). */
export function compareIP(a: string, b: string): number {
  const pa = parseIP(a);
  const pb = parseIP(b);
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  if (pa.family !== pb.family) return pa.family - pb.family;
  return pa.value < pb.value ? -1 : pa.value > pb.value ? 1 : 0;
}

export function formatIPv4(v: bigint): string {
  return formatV4(v & 0xffffffffn);
}
