/**
 * Decoders for the rtnetlink messages the agent reads: dump replies, multicast events, errors.
 * They read the same layouts encode.ts writes, so a round trip checks both sides.
 */
import { bytesToIP, bytesToMAC, formatCIDR } from "./addr.js";
import {
  AF_BRIDGE,
  IFA_ADDRESS,
  IFA_LOCAL,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINK,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_OPERSTATE,
  IFLA_VXLAN_ID,
  IFLA_VXLAN_LEARNING,
  IFLA_VXLAN_LINK,
  IFLA_VXLAN_LOCAL,
  IFLA_VXLAN_LOCAL6,
  IFLA_VXLAN_PORT,
  IFLA_VXLAN_TTL,
  NDA_DST,
  NDA_LLADDR,
  NDA_MASTER,
  NHA_BLACKHOLE,
  NHA_GATEWAY,
  NHA_GROUP,
  NHA_ID,
  NHA_OIF,
  NLA_TYPE_MASK,
  NLMSG_HDRLEN,
  RTA_DST,
  RTA_GATEWAY,
  RTA_NH_ID,
  RTA_OIF,
  RTA_PRIORITY,
  RTA_TABLE,
  RTN_BLACKHOLE,
  RTN_UNICAST,
  RTNH_F_ONLINK,
} from "./constants.js";
import { align4, readI32, readU16, readU32 } from "./writer.js";

export interface RawMessage {
  type: number;
  flags: number;
  seq: number;
  port: number;
  /** Everything after the 16-byte header. */
  body: Buffer;
}

/** Splits a datagram into its netlink messages. */
export function splitMessages(buf: Buffer): RawMessage[] {
  const out: RawMessage[] = [];
  let at = 0;
  while (at + NLMSG_HDRLEN <= buf.length) {
    const len = readU32(buf, at);
    if (len < NLMSG_HDRLEN || at + len > buf.length) throw new Error(`bad netlink message length ${len}`);
    out.push({
      type: readU16(buf, at + 4),
      flags: readU16(buf, at + 6),
      seq: readU32(buf, at + 8),
      port: readU32(buf, at + 12),
      body: buf.subarray(at + NLMSG_HDRLEN, at + len),
    });
    at += align4(len);
  }
  return out;
}

/** Attributes by type (first occurrence wins; the nested flag is masked off). */
export function parseAttrs(buf: Buffer, from = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let at = from;
  while (at + 4 <= buf.length) {
    const len = readU16(buf, at);
    if (len < 4 || at + len > buf.length) break;
    const type = readU16(buf, at + 2) & NLA_TYPE_MASK;
    if (!out.has(type)) out.set(type, buf.subarray(at + 4, at + len));
    at += align4(len);
  }
  return out;
}

const u32 = (b: Buffer | undefined) => (b && b.length >= 4 ? readU32(b, 0) : undefined);
const str = (b: Buffer | undefined) => (b ? b.toString("utf8").replace(/\0.*$/s, "") : undefined);

export interface NetlinkErrorInfo {
  /** Positive errno; 0 is an acknowledgement. */
  errno: number;
  /** Header of the request this answers. */
  seq: number;
  type: number;
}

export function decodeError(body: Buffer): NetlinkErrorInfo {
  const err = readI32(body, 0);
  return {
    errno: -err,
    type: body.length >= 4 + NLMSG_HDRLEN ? readU16(body, 8) : 0,
    seq: body.length >= 4 + NLMSG_HDRLEN ? readU32(body, 12) : 0,
  };
}

export interface RouteInfo {
  family: number;
  dst: string;
  dstLen: number;
  table: number;
  protocol: number;
  scope: number;
  /** RTN_* */
  type: number;
  flags: number;
  onlink: boolean;
  gateway?: string;
  oif?: number;
  priority: number;
  /** The nexthop object the route uses (RTA_NH_ID). */
  nhid?: number;
}

export function decodeRoute(body: Buffer): RouteInfo {
  const family = body[0]!;
  const dstLen = body[1]!;
  const a = parseAttrs(body, 12);
  const dstBytes = a.get(RTA_DST) ?? Buffer.alloc(family === 10 ? 16 : 4);
  const gw = a.get(RTA_GATEWAY);
  const flags = readU32(body, 8);
  return {
    family,
    dstLen,
    dst: formatCIDR(dstBytes, dstLen),
    table: u32(a.get(RTA_TABLE)) ?? body[4]!,
    protocol: body[5]!,
    scope: body[6]!,
    type: body[7]!,
    flags,
    onlink: (flags & RTNH_F_ONLINK) !== 0,
    gateway: gw ? bytesToIP(gw) : undefined,
    oif: u32(a.get(RTA_OIF)),
    priority: u32(a.get(RTA_PRIORITY)) ?? 0,
    nhid: u32(a.get(RTA_NH_ID)),
  };
}

export interface NexthopInfo {
  id: number;
  family: number;
  protocol: number;
  flags: number;
  onlink: boolean;
  oif?: number;
  gateway?: string;
  blackhole: boolean;
  /** A group of nexthops (never one of ours). */
  group: boolean;
}

/** struct nhmsg + NHA_* */
export function decodeNexthop(body: Buffer): NexthopInfo {
  const a = parseAttrs(body, 8);
  const gw = a.get(NHA_GATEWAY);
  const flags = readU32(body, 4);
  return {
    id: u32(a.get(NHA_ID)) ?? 0,
    family: body[0]!,
    protocol: body[2]!,
    flags,
    onlink: (flags & RTNH_F_ONLINK) !== 0,
    oif: u32(a.get(NHA_OIF)),
    gateway: gw ? bytesToIP(gw) : undefined,
    blackhole: a.has(NHA_BLACKHOLE),
    group: a.has(NHA_GROUP),
  };
}

export const routeTypeName = (t: number) =>
  t === RTN_UNICAST ? "unicast" : t === RTN_BLACKHOLE ? "blackhole" : `type${t}`;

export interface NeighborInfo {
  family: number;
  ifindex: number;
  state: number;
  flags: number;
  /** NDA_DST: the IP for ARP/NDP entries, the remote VTEP for VXLAN FDB entries. */
  ip?: string;
  mac?: string;
  master?: number;
  bridge: boolean;
}

export function decodeNeighbor(body: Buffer): NeighborInfo {
  const a = parseAttrs(body, 12);
  const dst = a.get(NDA_DST);
  const ll = a.get(NDA_LLADDR);
  return {
    family: body[0]!,
    ifindex: readI32(body, 4),
    state: readU16(body, 8),
    flags: body[10]!,
    ip: dst && (dst.length === 4 || dst.length === 16) ? bytesToIP(dst) : undefined,
    mac: ll && ll.length === 6 ? bytesToMAC(ll) : undefined,
    master: u32(a.get(NDA_MASTER)),
    bridge: body[0] === AF_BRIDGE,
  };
}

export interface VxlanInfo {
  vni?: number;
  port?: number;
  local?: string;
  link?: number;
  learning?: boolean;
  ttl?: number;
}

export interface LinkInfo {
  index: number;
  /** IFF_* */
  flags: number;
  up: boolean;
  name: string;
  mtu?: number;
  mac?: string;
  link?: number;
  master?: number;
  operstate?: number;
  kind?: string;
  vxlan?: VxlanInfo;
  /** IFLA_INFO_DATA as it came, for kinds not decoded here. */
  infoData?: Buffer;
}

export function decodeVxlanData(data: Buffer): VxlanInfo {
  const a = parseAttrs(data);
  const local = a.get(IFLA_VXLAN_LOCAL) ?? a.get(IFLA_VXLAN_LOCAL6);
  const port = a.get(IFLA_VXLAN_PORT);
  const learning = a.get(IFLA_VXLAN_LEARNING);
  const ttl = a.get(IFLA_VXLAN_TTL);
  return {
    vni: u32(a.get(IFLA_VXLAN_ID)),
    port: port ? port.readUInt16BE(0) : undefined,
    local: local ? bytesToIP(local) : undefined,
    link: u32(a.get(IFLA_VXLAN_LINK)),
    learning: learning ? learning[0] !== 0 : undefined,
    ttl: ttl ? ttl[0] : undefined,
  };
}

export function decodeLink(body: Buffer): LinkInfo {
  const a = parseAttrs(body, 16);
  const flags = readU32(body, 8);
  const mac = a.get(IFLA_ADDRESS);
  const operstate = a.get(IFLA_OPERSTATE);
  const out: LinkInfo = {
    index: readI32(body, 4),
    flags,
    up: (flags & 1) !== 0,
    name: str(a.get(IFLA_IFNAME)) ?? "",
    mtu: u32(a.get(IFLA_MTU)),
    mac: mac && mac.length === 6 ? bytesToMAC(mac) : undefined,
    link: u32(a.get(IFLA_LINK)),
    master: u32(a.get(IFLA_MASTER)),
    operstate: operstate ? operstate[0] : undefined,
  };
  const li = a.get(IFLA_LINKINFO);
  if (li) {
    const info = parseAttrs(li);
    out.kind = str(info.get(IFLA_INFO_KIND));
    const data = info.get(IFLA_INFO_DATA);
    if (data) {
      out.infoData = data;
      if (out.kind === "vxlan") out.vxlan = decodeVxlanData(data);
    }
  }
  return out;
}

export interface AddressInfo {
  family: number;
  prefixLen: number;
  index: number;
  scope: number;
  /** `ip/len` with the interface's own address (IFA_LOCAL). */
  cidr: string;
  ip: string;
}

export function decodeAddress(body: Buffer): AddressInfo {
  const a = parseAttrs(body, 8);
  const raw = a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS) ?? Buffer.alloc(4);
  const ip = bytesToIP(raw);
  return {
    family: body[0]!,
    prefixLen: body[1]!,
    scope: body[3]!,
    index: readU32(body, 4),
    ip,
    cidr: `${ip}/${body[1]}`,
  };
}
