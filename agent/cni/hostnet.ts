/**
 * The host side of a pod's wiring, through rtnetlink on the agent's own namespace: the veth pair
 * (its peer created directly inside the pod's namespace under its final name, so there is no
 * move and no rename), the /32 (/128) route to the pod and a permanent neighbor entry for it. Single changes, so the `netlink`
 * package's typed API is enough; only the veth peer's nested attributes are encoded by hand.
 */
import { closeSync, openSync } from "node:fs";
import { createRtNetlink, type RtNetlinkSocket, type rt } from "netlink";
import {
  bytesToMAC,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  ipToBytes,
  macToBytes,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  RT_SCOPE_LINK,
  RT_TABLE_MAIN,
  RTN_UNICAST,
  RTPROT_WEFT_POD,
  VETH_INFO_PEER,
} from "../../netlink/index.js";

function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
};
const cstr = (s: string) => Buffer.from(`${s}\0`, "utf8");

export interface VethSpec {
  hostName: string;
  hostMac: string;
  peerName: string;
  peerMac: string;
  /** fd of the pod's network namespace (an open /var/run/netns/X) */
  peerNetnsFd: number;
  mtu?: number;
}

/** IFLA_LINKINFO for kind veth: the peer's ifinfomsg and its name, MAC, MTU and namespace. */
export function encodeVethLinkinfo(s: VethSpec): Buffer {
  // The peer stays down here: asking for IFF_UP on a peer created in another namespace fails
  // with ENOTCONN on this kernel (6.18, iproute2 too); the pod-side batch brings it up.
  const ifinfo = Buffer.alloc(16);
  const peer = Buffer.concat([
    ifinfo,
    attr(IFLA_IFNAME, cstr(s.peerName)),
    attr(IFLA_ADDRESS, macToBytes(s.peerMac)),
    attr(IFLA_NET_NS_FD, u32(s.peerNetnsFd)),
    ...(s.mtu ? [attr(IFLA_MTU, u32(s.mtu))] : []),
  ]);
  return Buffer.concat([
    attr(IFLA_INFO_KIND, cstr("veth")),
    attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer)),
  ]);
}

export interface HostLink {
  index: number;
  mac: string;
  up: boolean;
}

const errCode = (err: unknown) => /Request rejected: (\w+)/.exec(String((err as Error)?.message))?.[1];

export class HostNet {
  private readonly sock: RtNetlinkSocket;

  constructor(sock?: RtNetlinkSocket) {
    this.sock = sock ?? createRtNetlink();
  }

  async link(name: string): Promise<HostLink | undefined> {
    try {
      const [msg] = await this.sock.getLink({}, { ifname: name });
      if (!msg) return undefined;
      const mac = msg.attrs.address ? bytesToMAC(msg.attrs.address) : "";
      return { index: msg.data.index ?? 0, mac, up: Boolean(msg.data.flags?.up) };
    } catch (err) {
      if (errCode(err) === "ENODEV") return undefined;
      throw err;
    }
  }

  /** Creates the pair; EEXIST surfaces as an error (the caller decides whether to replace). */
  async createVeth(spec: Omit<VethSpec, "peerNetnsFd">, netnsPath: string): Promise<HostLink> {
    const fd = openSync(netnsPath, "r");
    try {
      await this.sock.newLink(
        { flags: { up: true }, change: { up: true } },
        {
          ifname: spec.hostName,
          address: macToBytes(spec.hostMac),
          ...(spec.mtu ? { mtu: spec.mtu } : {}),
          linkinfo: encodeVethLinkinfo({ ...spec, peerNetnsFd: fd }),
        },
        { flags: NLM_F_CREATE | NLM_F_EXCL },
      );
    } finally {
      closeSync(fd);
    }
    const link = await this.link(spec.hostName);
    if (!link) throw new Error(`veth ${spec.hostName} vanished right after it was created`);
    return link;
  }

  /** Deleting the host side takes the pod side and the host route with it. False if absent. */
  async deleteLink(name: string): Promise<boolean> {
    try {
      await this.sock.delLink({}, { ifname: name });
      return true;
    } catch (err) {
      if (errCode(err) === "ENODEV") return false;
      throw err;
    }
  }

  async setUp(index: number): Promise<void> {
    await this.sock.setLink({ index, flags: { up: true }, change: { up: true } });
  }

  /** <podIP>/32 (/128) dev <veth> scope link, carrying the pod-route protocol number (RTPROT_WEFT_POD). */
  async replacePodRoute(ip: string, oif: number): Promise<void> {
    const { family, bytes } = ipToBytes(ip);
    await this.sock.newRoute(
      {
        family,
        dstLen: bytes.length * 8,
        table: RT_TABLE_MAIN,
        protocol: RTPROT_WEFT_POD as rt.RouteProtocol,
        scope: RT_SCOPE_LINK,
        type: RTN_UNICAST,
      },
      { dst: bytes, oif },
      { flags: NLM_F_CREATE | NLM_F_REPLACE },
    );
  }

  /**
   * <podIP> lladdr <pod MAC> permanent on the host veth: the host never has to ARP/ND for its
   * pods (IPv6 would otherwise wait for DAD on the veth's link-local before the first reply).
   */
  async replacePodNeighbor(ip: string, ifindex: number, mac: string): Promise<void> {
    const { family, bytes } = ipToBytes(ip);
    await this.sock.newNeighbor(
      { family, ifindex, state: { permanent: true } },
      { dst: bytes, lladdr: macToBytes(mac) },
      { flags: NLM_F_CREATE | NLM_F_REPLACE },
    );
  }

  /** Whether the host has exactly <ip>/32 (/128) out of interface `oif` in the main table. */
  async hasPodRoute(ip: string, oif: number): Promise<boolean> {
    const { family, bytes } = ipToBytes(ip);
    const routes = await this.sock.getRoutes({ family });
    return routes.some(
      (r) =>
        r.data.dstLen === bytes.length * 8 &&
        (r.attrs.table ?? r.data.table) === RT_TABLE_MAIN &&
        r.attrs.oif === oif &&
        r.attrs.dst !== undefined &&
        Buffer.compare(r.attrs.dst, bytes) === 0,
    );
  }

  close(): void {
    this.sock.socket.socket.close();
  }
}
