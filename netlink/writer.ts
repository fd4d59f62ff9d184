import { endianness } from "node:os";
import { writeMAC } from "./addr.js";
import { NLA_F_NESTED, NLMSG_HDRLEN } from "./constants.js";

/** Netlink headers and attributes use host byte order; addresses and ports are network order. */
const LE = endianness() === "LE";

export const align4 = (n: number) => (n + 3) & ~3;

/**
 * Appends netlink messages into one growing buffer, so that many requests can go out in a single
 * sendmsg. Each message records where it starts, which lets a bulk sender resend exactly the
 * messages that failed.
 */
export class NlWriter {
  buf: Buffer;
  len = 0;
  private msgStart = -1;
  private readonly nests: number[] = [];

  constructor(initial = 4096) {
    this.buf = Buffer.alloc(initial);
  }

  private reserve(n: number): number {
    const at = this.len;
    const need = at + n;
    if (need > this.buf.length) {
      const next = Buffer.alloc(Math.max(need, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    this.len = need;
    return at;
  }

  /** Starts a message; the length is filled in by end(). Returns the message's offset. */
  begin(type: number, flags: number, seq: number, port = 0): number {
    if (this.msgStart >= 0) throw new Error("netlink message not ended");
    const at = this.reserve(NLMSG_HDRLEN);
    this.msgStart = at;
    this.u32At(at + 4, 0);
    this.u16At(at + 4, type);
    this.u16At(at + 6, flags);
    this.u32At(at + 8, seq >>> 0);
    this.u32At(at + 12, port >>> 0);
    return at;
  }

  end(): void {
    if (this.nests.length) throw new Error("unclosed nested attribute");
    const start = this.msgStart;
    if (start < 0) throw new Error("no netlink message begun");
    this.u32At(start, this.len - start);
    this.msgStart = -1;
  }

  /** Drops the message begun last (an encoder found bad input half way). */
  abort(): void {
    if (this.msgStart >= 0) this.len = this.msgStart;
    this.msgStart = -1;
    this.nests.length = 0;
  }

  /** Copies an already encoded message (or several) verbatim. */
  raw(bytes: Uint8Array): void {
    const at = this.reserve(align4(bytes.length));
    this.buf.set(bytes, at);
    this.buf.fill(0, at + bytes.length, this.len);
  }

  /** Fixed-size family header (rtmsg, ndmsg, ifinfomsg...), zeroed; returns its offset. */
  struct(size: number): number {
    const at = this.reserve(align4(size));
    const b = this.buf;
    for (let i = at; i < this.len; i++) b[i] = 0;
    return at;
  }

  attr(type: number, payload: Uint8Array): void {
    const at = this.reserve(align4(4 + payload.length));
    this.u16At(at, 4 + payload.length);
    this.u16At(at + 2, type);
    this.buf.set(payload, at + 4);
    this.buf.fill(0, at + 4 + payload.length, this.len);
  }

  attrU8(type: number, v: number): void {
    const at = this.reserve(8);
    this.u16At(at, 5);
    this.u16At(at + 2, type);
    this.u32At(at + 4, 0);
    this.buf[at + 4] = v;
  }

  attrU16(type: number, v: number): void {
    const at = this.reserve(8);
    this.u16At(at, 6);
    this.u16At(at + 2, type);
    this.u32At(at + 4, 0);
    this.u16At(at + 4, v);
  }

  /** A 16-bit value in network byte order (UDP ports). */
  attrU16BE(type: number, v: number): void {
    const at = this.reserve(8);
    this.u16At(at, 6);
    this.u16At(at + 2, type);
    this.u32At(at + 4, 0);
    this.buf[at + 4] = (v >>> 8) & 0xff;
    this.buf[at + 5] = v & 0xff;
  }

  attrU32(type: number, v: number): void {
    const at = this.reserve(8);
    this.u16At(at, 8);
    this.u16At(at + 2, type);
    this.u32At(at + 4, v >>> 0);
  }

  /** An IPv4 address (from parseIPv4) in network byte order. */
  attrIPv4(type: number, v4: number): void {
    const at = this.reserve(8);
    this.u16At(at, 8);
    this.u16At(at + 2, type);
    be32(this.buf, at + 4, v4);
  }

  /** A MAC address written straight from its text form. */
  attrMAC(type: number, mac: string): void {
    const at = this.reserve(12);
    this.u16At(at, 10);
    this.u16At(at + 2, type);
    this.buf[at + 10] = 0;
    this.buf[at + 11] = 0;
    writeMAC(mac, this.buf, at + 4);
  }

  /** NUL-terminated string, as IFLA_IFNAME and IFLA_INFO_KIND are. */
  attrString(type: number, s: string): void {
    this.attr(type, Buffer.from(`${s}\0`, "utf8"));
  }

  beginNested(type: number, flagNested = false): void {
    const at = this.reserve(4);
    this.u16At(at + 2, type | (flagNested ? NLA_F_NESTED : 0));
    this.nests.push(at);
  }

  endNested(): void {
    const at = this.nests.pop();
    if (at === undefined) throw new Error("no nested attribute open");
    this.u16At(at, this.len - at);
  }

  // Plain byte stores: Buffer.writeUInt32LE & co. validate their arguments on every call, which
  // showed up as a third of the encoding time of a 30,000-request apply.
  u8At(at: number, v: number): void {
    this.buf[at] = v;
  }

  u16At(at: number, v: number): void {
    const b = this.buf;
    if (LE) {
      b[at] = v & 0xff;
      b[at + 1] = (v >>> 8) & 0xff;
    } else {
      b[at] = (v >>> 8) & 0xff;
      b[at + 1] = v & 0xff;
    }
  }

  u32At(at: number, v: number): void {
    const b = this.buf;
    if (LE) {
      b[at] = v & 0xff;
      b[at + 1] = (v >>> 8) & 0xff;
      b[at + 2] = (v >>> 16) & 0xff;
      b[at + 3] = (v >>> 24) & 0xff;
    } else {
      be32(b, at, v);
    }
  }

  i32At(at: number, v: number): void {
    this.u32At(at, v >>> 0);
  }

  /** A copy of everything written so far. */
  bytes(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }

  reset(): void {
    this.len = 0;
    this.msgStart = -1;
    this.nests.length = 0;
  }
}

function be32(b: Buffer, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

export function readU16(b: Buffer, at: number): number {
  return LE ? b.readUInt16LE(at) : b.readUInt16BE(at);
}

export function readU32(b: Buffer, at: number): number {
  return LE ? b.readUInt32LE(at) : b.readUInt32BE(at);
}

export function readI32(b: Buffer, at: number): number {
  return LE ? b.readInt32LE(at) : b.readInt32BE(at);
}
