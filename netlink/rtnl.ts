/**
 * Request/response and dumps over the `netlink` package's rtnetlink socket, decoded with our own
 * decoders; and the multicast event subscription. Bulk programming lives in bulk.ts.
 */
import { getSystemErrorName } from "node:util";
import { createRtNetlink, RawNetlinkSocket, type RtNetlinkSocket } from "netlink";
import {
  AF_BRIDGE,
  AF_INET,
  AF_UNSPEC,
  IFADDRMSG_LEN,
  IFINFOMSG_LEN,
  IFLA_IFNAME,
  NDMSG_LEN,
  NETLINK_ROUTE,
  NHMSG_LEN,
  NLM_F_ACK,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETNEIGH,
  RTM_GETNEXTHOP,
  RTM_GETROUTE,
  RTMSG_LEN,
} from "./constants.js";
import {
  type AddressInfo,
  decodeAddress,
  decodeError,
  decodeLink,
  decodeNeighbor,
  decodeNexthop,
  decodeRoute,
  type LinkInfo,
  type NeighborInfo,
  type NexthopInfo,
  type RawMessage,
  type RouteInfo,
  splitMessages,
} from "./decode.js";
import { NlWriter, readU16 } from "./writer.js";

export class NetlinkError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(errno: number, what: string) {
    const code = errnoName(errno);
    super(`${what}: ${code}`);
    this.errno = errno;
    this.code = code;
  }
}

export function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
}

const SOCKET_BUFFER = 4 << 20;

/** One rtnetlink socket for requests and dumps (one per network namespace: it binds where it opens). */
export class Rtnl {
  readonly rt: RtNetlinkSocket;

  constructor() {
    this.rt = createRtNetlink({ recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER });
  }

  /**
   * Sends one message we encoded ourselves (header included) and waits for its answer. The package
   * assigns sequence number and port; an error reply becomes a NetlinkError carrying the errno.
   */
  async request(msg: Buffer, what = "netlink request"): Promise<RawMessage[]> {
    const type = readU16(msg, 4);
    const flags = readU16(msg, 6) & ~(NLM_F_REQUEST | NLM_F_ACK);
    const [replies] = await this.rt.socket.request(type, msg.subarray(16), { flags, checkError: false });
    const out: RawMessage[] = [];
    for (const r of replies) {
      if (r.type === NLMSG_ERROR) {
        const e = decodeError(r.data);
        if (e.errno !== 0) throw new NetlinkError(e.errno, what);
        continue;
      }
      if (r.type === NLMSG_DONE) continue;
      out.push({ type: r.type, flags: r.flags, seq: r.seq, port: r.port, body: r.data });
    }
    return out;
  }

  async dump(type: number, headerLen: number, family: number, extra?: (w: NlWriter) => void) {
    const w = new NlWriter(64);
    w.begin(type, 0x300, 0);
    const at = w.struct(headerLen);
    w.u8At(at, family);
    extra?.(w);
    w.end();
    return this.request(w.bytes(), `dump ${type}`);
  }

  async routes(family = AF_INET): Promise<RouteInfo[]> {
    return (await this.dump(RTM_GETROUTE, RTMSG_LEN, family)).map((m) => decodeRoute(m.body));
  }

  /** ARP/NDP entries (AF_INET/AF_INET6) or, with AF_BRIDGE, forwarding database entries. */
  async neighbors(family: number = AF_INET): Promise<NeighborInfo[]> {
    return (await this.dump(RTM_GETNEIGH, NDMSG_LEN, family)).map((m) => decodeNeighbor(m.body));
  }

  async fdb(): Promise<NeighborInfo[]> {
    return this.neighbors(AF_BRIDGE);
  }

  async links(): Promise<LinkInfo[]> {
    return (await this.dump(RTM_GETLINK, IFINFOMSG_LEN, AF_UNSPEC)).map((m) => decodeLink(m.body));
  }

  async link(name: string): Promise<LinkInfo | undefined> {
    const w = new NlWriter(64);
    w.begin(RTM_GETLINK, 0, 0);
    w.struct(IFINFOMSG_LEN);
    w.attrString(IFLA_IFNAME, name);
    w.end();
    try {
      const [m] = await this.request(w.bytes(), `get link ${name}`);
      return m ? decodeLink(m.body) : undefined;
    } catch (err) {
      if (err instanceof NetlinkError && err.code === "ENODEV") return undefined;
      throw err;
    }
  }

  /** Nexthop objects; a kernel without them (before 5.3) answers with an error, and this with []. */
  async nexthops(): Promise<NexthopInfo[]> {
    try {
      return (await this.dump(RTM_GETNEXTHOP, NHMSG_LEN, AF_UNSPEC)).map((m) => decodeNexthop(m.body));
    } catch (err) {
      if (err instanceof NetlinkError && ["EOPNOTSUPP", "EINVAL", "ENOENT"].includes(err.code)) return [];
      throw err;
    }
  }

  async addresses(family = AF_UNSPEC): Promise<AddressInfo[]> {
    return (await this.dump(RTM_GETADDR, IFADDRMSG_LEN, family)).map((m) => decodeAddress(m.body));
  }

  close(): void {
    this.rt.socket.close();
  }
}

export interface Subscription {
  close(): void;
}

/**
 * Joins rtnetlink multicast groups and hands every notification to `onMessage`. When the kernel
 * drops notifications because we read too slowly (ENOBUFS), `onOverflow` is told: the caller must
 * resynchronise from a dump, since some changes went unseen.
 */
export function subscribe(
  groups: number[],
  onMessage: (m: RawMessage) => void,
  onOverflow: () => void,
): Subscription {
  const sock = new RawNetlinkSocket(NETLINK_ROUTE, {
    recvBufferSize: SOCKET_BUFFER,
    sendBufferSize: 0,
  });
  for (const g of groups) sock.addMembership(g);
  sock.on("message", (buf) => {
    for (const m of splitMessages(buf)) onMessage(m);
  });
  sock.on("error", (err) => {
    if (err.code === "ENOBUFS") onOverflow();
  });
  sock.unref();
  return { close: () => sock.close() };
}
