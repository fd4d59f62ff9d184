/**
 * Hand encoders for the rtnetlink requests the agent sends. They write straight into an NlWriter
 * so that a bulk apply can pack a thousand of them into one sendmsg; encodeX() wraps one message.
 */
import { parseIPv4 } from "../net/index.js";
import { ipToBytes, macToBytes, parseCIDR } from "./addr.js";
import {
  AF_BRIDGE,
  AF_INET,
  AF_UNSPEC,
  IFA_ADDRESS,
  IFA_LOCAL,
  IFADDRMSG_LEN,
  IFF_UP,
  IFINFOMSG_LEN,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINK,
  IFLA_LINKINFO,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  IFLA_NET_NS_PID,
  IFLA_VXLAN_ID,
  IFLA_VXLAN_LEARNING,
  IFLA_VXLAN_LINK,
  IFLA_VXLAN_LOCAL,
  IFLA_VXLAN_LOCAL6,
  IFLA_VXLAN_PORT,
  IFLA_VXLAN_TTL,
  NDA_DST,
  NDA_LLADDR,
  NDMSG_LEN,
  NHA_GATEWAY,
  NHA_ID,
  NHA_OIF,
  NHMSG_LEN,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  NLMSG_NOOP,
  NTF_SELF,
  NUD_NOARP,
  NUD_PERMANENT,
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTA_DST,
  RTA_GATEWAY,
  RTA_NH_ID,
  RTA_OIF,
  RTA_PRIORITY,
  RTA_TABLE,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_DELNEXTHOP,
  RTM_DELROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWNEXTHOP,
  RTM_NEWROUTE,
  RTMSG_LEN,
  RTN_BLACKHOLE,
  RTN_UNICAST,
  RTNH_F_ONLINK,
  RTPROT_WEFT,
  VETH_INFO_PEER,
} from "./constants.js";
import { NlWriter } from "./writer.js";

/** set = create or replace (idempotent); add = create, fail if present; del = remove. */
export type Op = "set" | "add" | "del";

function newFlags(op: Op): number {
  return op === "set" ? NLM_F_CREATE | NLM_F_REPLACE : op === "add" ? NLM_F_CREATE | NLM_F_EXCL : 0;
}

const REQ = NLM_F_REQUEST;

export interface RouteSpec {
  /** Destination prefix, e.g. `10.244.3.0/26`. */
  dst: string;
  type?: "unicast" | "blackhole";
  gateway?: string;
  /** Output interface index. */
  oif?: number;
  onlink?: boolean;
  /** Default RTPROT_WEFT: the kernel matches it on delete, so a delete never hits a foreign route. */
  protocol?: number;
  /** Default main (254). */
  table?: number;
  /** Metric; 0 when absent. */
  priority?: number;
  /** Nexthop object id: the route's next hop is that object (gateway, oif and onlink are not sent). */
  nhid?: number;
}

/** struct rtmsg + RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_PRIORITY, RTA_TABLE (only for tables > 255). */
/** A prefix length in s[from..], 0..max. */
function prefixLen(s: string, from: number, max: number): number {
  let n = 0;
  if (from >= s.length || s.length - from > 3) n = -1;
  for (let i = from; i < s.length && n >= 0; i++) {
    const c = s.charCodeAt(i);
    n = c >= 48 && c <= 57 ? n * 10 + (c - 48) : -1;
  }
  if (n < 0 || n > max) throw new Error(`bad prefix length in ${JSON.stringify(s)}`);
  return n;
}

/** The destination as family, length and either an IPv4 number (fast path) or bytes. */
function destination(cidr: string): { family: number; len: number; v4: number; bytes?: Buffer } {
  const slash = cidr.indexOf("/");
  const v4 = parseIPv4(cidr, 0, slash < 0 ? cidr.length : slash);
  if (v4 < 0) {
    const p = parseCIDR(cidr);
    return { family: p.family, len: p.len, v4: -1, bytes: p.bytes };
  }
  const len = slash < 0 ? 32 : prefixLen(cidr, slash + 1, 32);
  if (v4 % 2 ** (32 - len) !== 0) throw new Error(`host bits set in ${JSON.stringify(cidr)}`);
  return { family: AF_INET, len, v4 };
}

/** An address attribute; returns its family. IPv4 is written without allocating. */
function addrAttr(w: NlWriter, type: number, ip: string): number {
  const v4 = parseIPv4(ip);
  if (v4 >= 0) {
    w.attrIPv4(type, v4);
    return AF_INET;
  }
  const b = ipToBytes(ip);
  w.attr(type, b.bytes);
  return b.family;
}

export function writeRoute(w: NlWriter, op: Op, r: RouteSpec, seq: number, ack = true): void {
  const dst = destination(r.dst);
  const table = r.table ?? RT_TABLE_MAIN;
  const type = r.type === "blackhole" ? RTN_BLACKHOLE : RTN_UNICAST;
  // iproute2's defaults: a gateway route is universe scope, a device-only route link scope;
  // deletes use "nowhere", which the kernel treats as any scope
  const scope =
    op === "del"
      ? RT_SCOPE_NOWHERE
      : type === RTN_UNICAST && !r.gateway && r.oif !== undefined && r.nhid === undefined
        ? RT_SCOPE_LINK
        : RT_SCOPE_UNIVERSE;
  w.begin(op === "del" ? RTM_DELROUTE : RTM_NEWROUTE, REQ | (ack ? NLM_F_ACK : 0) | newFlags(op), seq);
  const at = w.struct(RTMSG_LEN);
  w.u8At(at, dst.family);
  w.u8At(at + 1, dst.len);
  w.u8At(at + 4, table > 255 ? 252 : table); // RT_TABLE_COMPAT then RTA_TABLE carries it
  w.u8At(at + 5, r.protocol ?? RTPROT_WEFT);
  w.u8At(at + 6, scope);
  // a delete with RTN_UNSPEC matches any type, as `ip route del` sends it
  w.u8At(at + 7, op === "del" ? 0 : type);
  const nh = r.nhid !== undefined && op !== "del";
  w.u32At(at + 8, r.onlink && !nh ? RTNH_F_ONLINK : 0);
  if (table > 255) w.attrU32(RTA_TABLE, table);
  if (dst.v4 >= 0) w.attrIPv4(RTA_DST, dst.v4);
  else w.attr(RTA_DST, dst.bytes!);
  if (nh) {
    w.attrU32(RTA_NH_ID, r.nhid!);
  } else {
    if (r.gateway && addrAttr(w, RTA_GATEWAY, r.gateway) !== dst.family) {
      w.abort();
      throw new Error(`gateway ${r.gateway} is not in the family of ${r.dst}`);
    }
    if (r.oif !== undefined) w.attrU32(RTA_OIF, r.oif);
  }
  if (r.priority) w.attrU32(RTA_PRIORITY, r.priority);
  w.end();
}

export interface NexthopSpec {
  id: number;
  /** Output interface index (the kernel wants one for every gateway nexthop). */
  oif: number;
  gateway: string;
  onlink?: boolean;
  /** Default RTPROT_WEFT. */
  protocol?: number;
}

/**
 * struct nhmsg + NHA_ID, NHA_OIF, NHA_GATEWAY — `ip nexthop replace id N via GW dev DEV [onlink]
 * proto P`. Delete sends the id only. Routes that point at a nexthop object (RTA_NH_ID) are
 * inserted in O(log n): without them the kernel compares every gateway route on the same device
 * (its fib_info hash does not include the gateway), which made 10,000 onlink routes take seconds.
 */
export function writeNexthop(w: NlWriter, op: Op, n: NexthopSpec, seq: number, ack = true): void {
  w.begin(op === "del" ? RTM_DELNEXTHOP : RTM_NEWNEXTHOP, REQ | (ack ? NLM_F_ACK : 0) | newFlags(op), seq);
  const at = w.struct(NHMSG_LEN);
  w.u8At(at + 2, op === "del" ? 0 : (n.protocol ?? RTPROT_WEFT));
  w.u32At(at + 4, n.onlink && op !== "del" ? RTNH_F_ONLINK : 0);
  w.attrU32(NHA_ID, n.id);
  if (op !== "del") {
    try {
      w.u8At(at, addrAttr(w, NHA_GATEWAY, n.gateway));
    } catch (err) {
      w.abort();
      throw err;
    }
    w.attrU32(NHA_OIF, n.oif);
  }
  w.end();
}

export interface NeighborSpec {
  ifindex: number;
  ip: string;
  /** Required unless op is del. */
  mac?: string;
  /** Default NUD_PERMANENT. */
  state?: number;
}

/** struct ndmsg (AF_INET/AF_INET6) + NDA_DST + NDA_LLADDR: an ARP / NDP entry. */
export function writeNeighbor(w: NlWriter, op: Op, n: NeighborSpec, seq: number, ack = true): void {
  if (n.mac === undefined && op !== "del") throw new Error("neighbor without MAC");
  w.begin(op === "del" ? RTM_DELNEIGH : RTM_NEWNEIGH, REQ | (ack ? NLM_F_ACK : 0) | newFlags(op), seq);
  const at = w.struct(NDMSG_LEN);
  w.i32At(at + 4, n.ifindex);
  w.u16At(at + 8, n.state ?? NUD_PERMANENT);
  try {
    w.u8At(at, addrAttr(w, NDA_DST, n.ip));
    if (n.mac !== undefined) w.attrMAC(NDA_LLADDR, n.mac);
  } catch (err) {
    w.abort();
    throw err;
  }
  w.end();
}

export interface FdbSpec {
  /** The VXLAN device. */
  ifindex: number;
  mac: string;
  /** Underlay IP of the remote VTEP. On delete, only this remote of the MAC is removed. */
  dst?: string;
  /** Default NUD_PERMANENT | NUD_NOARP, what `bridge fdb ... permanent` sends. */
  state?: number;
}

/**
 * struct ndmsg (AF_BRIDGE, NTF_SELF: the VXLAN device's own table, not a bridge master's)
 * + NDA_LLADDR + NDA_DST — `bridge fdb replace MAC dev DEV dst IP self permanent`.
 */
export function writeFdb(w: NlWriter, op: Op, f: FdbSpec, seq: number, ack = true): void {
  if (f.dst === undefined && op !== "del") throw new Error("FDB entry without destination");
  w.begin(op === "del" ? RTM_DELNEIGH : RTM_NEWNEIGH, REQ | (ack ? NLM_F_ACK : 0) | newFlags(op), seq);
  const at = w.struct(NDMSG_LEN);
  w.u8At(at, AF_BRIDGE);
  w.i32At(at + 4, f.ifindex);
  w.u16At(at + 8, f.state ?? NUD_PERMANENT | NUD_NOARP);
  w.u8At(at + 10, NTF_SELF);
  try {
    w.attrMAC(NDA_LLADDR, f.mac);
    if (f.dst !== undefined) addrAttr(w, NDA_DST, f.dst);
  } catch (err) {
    w.abort();
    throw err;
  }
  w.end();
}

export interface VxlanSpec {
  name: string;
  vni: number;
  /** UDP destination port (IANA 4789). */
  port: number;
  /** Underlay source address. */
  local: string;
  /** Underlay device index (IFLA_VXLAN_LINK). */
  link?: number;
  /** Default false: remote MACs come from our FDB entries only, as in Flannel. */
  learning?: boolean;
  ttl?: number;
  mtu?: number;
  mac?: string;
  up?: boolean;
}

function writeIfinfo(w: NlWriter, index: number, up: boolean | undefined): void {
  const at = w.struct(IFINFOMSG_LEN);
  w.u8At(at, AF_UNSPEC);
  w.i32At(at + 4, index);
  if (up !== undefined) {
    w.u32At(at + 8, up ? IFF_UP : 0);
    w.u32At(at + 12, IFF_UP);
  }
}

/** RTM_NEWLINK + IFLA_LINKINFO { IFLA_INFO_KIND "vxlan", IFLA_INFO_DATA { IFLA_VXLAN_* } }. */
export function writeVxlanLink(w: NlWriter, v: VxlanSpec, seq: number, ack = true): void {
  const local = ipToBytes(v.local);
  w.begin(RTM_NEWLINK, REQ | (ack ? NLM_F_ACK : 0) | NLM_F_CREATE | NLM_F_EXCL, seq);
  writeIfinfo(w, 0, v.up);
  w.attrString(IFLA_IFNAME, v.name);
  if (v.mtu !== undefined) w.attrU32(IFLA_MTU, v.mtu);
  if (v.mac !== undefined) w.attr(IFLA_ADDRESS, macToBytes(v.mac));
  w.beginNested(IFLA_LINKINFO);
  w.attr(IFLA_INFO_KIND, Buffer.from("vxlan")); // iproute2 sends the kind without its NUL
  w.beginNested(IFLA_INFO_DATA);
  // attribute order as iproute2 sends it, so captures of `ip link add ... type vxlan` compare byte for byte
  if (v.link !== undefined) w.attrU32(IFLA_VXLAN_LINK, v.link);
  w.attrU32(IFLA_VXLAN_ID, v.vni);
  w.attr(local.bytes.length === 4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, local.bytes);
  if (v.ttl !== undefined) w.attrU8(IFLA_VXLAN_TTL, v.ttl);
  w.attrU8(IFLA_VXLAN_LEARNING, v.learning ? 1 : 0);
  w.attrU16BE(IFLA_VXLAN_PORT, v.port);
  w.endNested();
  w.endNested();
  w.end();
}

export interface VethSpec {
  name: string;
  peerName: string;
  /** Move the peer into the namespace of this open netns file descriptor... */
  peerNsFd?: number;
  /** ...or of this process. */
  peerNsPid?: number;
  mtu?: number;
  mac?: string;
  peerMac?: string;
}

/** RTM_NEWLINK + IFLA_LINKINFO { "veth", IFLA_INFO_DATA { VETH_INFO_PEER { ifinfomsg, IFLA_* } } }. */
export function writeVethLink(w: NlWriter, v: VethSpec, seq: number, ack = true): void {
  w.begin(RTM_NEWLINK, REQ | (ack ? NLM_F_ACK : 0) | NLM_F_CREATE | NLM_F_EXCL, seq);
  writeIfinfo(w, 0, undefined);
  w.attrString(IFLA_IFNAME, v.name);
  if (v.mtu !== undefined) w.attrU32(IFLA_MTU, v.mtu);
  if (v.mac !== undefined) w.attr(IFLA_ADDRESS, macToBytes(v.mac));
  w.beginNested(IFLA_LINKINFO);
  w.attr(IFLA_INFO_KIND, Buffer.from("veth"));
  w.beginNested(IFLA_INFO_DATA);
  w.beginNested(VETH_INFO_PEER);
  writeIfinfo(w, 0, undefined);
  w.attrString(IFLA_IFNAME, v.peerName);
  if (v.mtu !== undefined) w.attrU32(IFLA_MTU, v.mtu);
  if (v.peerMac !== undefined) w.attr(IFLA_ADDRESS, macToBytes(v.peerMac));
  if (v.peerNsFd !== undefined) w.attrU32(IFLA_NET_NS_FD, v.peerNsFd);
  if (v.peerNsPid !== undefined) w.attrU32(IFLA_NET_NS_PID, v.peerNsPid);
  w.endNested();
  w.endNested();
  w.endNested();
  w.end();
}

export interface LinkChange {
  index: number;
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** Underlay link (IFLA_LINK); rarely changed. */
  link?: number;
}

/** RTM_NEWLINK on an existing index: only the given fields change. */
export function writeLinkChange(w: NlWriter, c: LinkChange, seq: number, ack = true): void {
  w.begin(RTM_NEWLINK, REQ | (ack ? NLM_F_ACK : 0), seq);
  writeIfinfo(w, c.index, c.up);
  if (c.mtu !== undefined) w.attrU32(IFLA_MTU, c.mtu);
  if (c.mac !== undefined) w.attr(IFLA_ADDRESS, macToBytes(c.mac));
  if (c.link !== undefined) w.attrU32(IFLA_LINK, c.link);
  w.end();
}

export function writeLinkDelete(w: NlWriter, index: number, seq: number, ack = true): void {
  w.begin(RTM_DELLINK, REQ | (ack ? NLM_F_ACK : 0), seq);
  writeIfinfo(w, index, undefined);
  w.end();
}

export interface AddressSpec {
  index: number;
  /** `10.244.1.0/32` */
  cidr: string;
  scope?: number;
  /** ifa_flags, such as IFA_F_NODAD (an IPv6 address usable at once, without duplicate detection). */
  flags?: number;
}

/** struct ifaddrmsg + IFA_LOCAL + IFA_ADDRESS. The prefix may have host bits (an interface address). */
export function writeAddress(w: NlWriter, op: Op, a: AddressSpec, seq: number, ack = true): void {
  const slash = a.cidr.indexOf("/");
  const ip = ipToBytes(slash < 0 ? a.cidr : a.cidr.slice(0, slash));
  const len = slash < 0 ? ip.bytes.length * 8 : Number(a.cidr.slice(slash + 1));
  w.begin(op === "del" ? RTM_DELADDR : RTM_NEWADDR, REQ | (ack ? NLM_F_ACK : 0) | newFlags(op), seq);
  const at = w.struct(IFADDRMSG_LEN);
  w.u8At(at, ip.family);
  w.u8At(at + 1, len);
  w.u8At(at + 2, a.flags ?? 0);
  w.u8At(at + 3, a.scope ?? RT_SCOPE_UNIVERSE);
  w.u32At(at + 4, a.index);
  w.attr(IFA_LOCAL, ip.bytes);
  w.attr(IFA_ADDRESS, ip.bytes);
  w.end();
}

/** A dump request: the family header zeroed except for its family byte. */
export function writeDump(w: NlWriter, type: number, headerLen: number, family: number, seq: number): void {
  w.begin(type, REQ | NLM_F_DUMP, seq);
  const at = w.struct(headerLen);
  w.u8At(at, family);
  w.end();
}

/** NLMSG_NOOP with ACK: the kernel acknowledges it after everything before it was processed. */
export function writeBarrier(w: NlWriter, seq: number): void {
  w.begin(NLMSG_NOOP, REQ | NLM_F_ACK, seq);
  w.end();
}

function one(f: (w: NlWriter) => void): Buffer {
  const w = new NlWriter(256);
  f(w);
  return w.bytes();
}

export const encodeNexthop = (op: Op, n: NexthopSpec, seq = 1) => one((w) => writeNexthop(w, op, n, seq));
export const encodeRoute = (op: Op, r: RouteSpec, seq = 1) => one((w) => writeRoute(w, op, r, seq));
export const encodeNeighbor = (op: Op, n: NeighborSpec, seq = 1) => one((w) => writeNeighbor(w, op, n, seq));
export const encodeFdb = (op: Op, f: FdbSpec, seq = 1) => one((w) => writeFdb(w, op, f, seq));
export const encodeVxlanLink = (v: VxlanSpec, seq = 1) => one((w) => writeVxlanLink(w, v, seq));
export const encodeVethLink = (v: VethSpec, seq = 1) => one((w) => writeVethLink(w, v, seq));
export const encodeLinkDelete = (index: number, seq = 1) => one((w) => writeLinkDelete(w, index, seq));
export const encodeLinkChange = (c: LinkChange, seq = 1) => one((w) => writeLinkChange(w, c, seq));
export const encodeAddress = (op: Op, a: AddressSpec, seq = 1) => one((w) => writeAddress(w, op, a, seq));
