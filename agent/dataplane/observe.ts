/**
 * Kernel entries (as decoded from dumps and events) -> the observed state: what we own, and the
 * route slots others hold. Pure, shared by the full resync and the event path.
 */
import {
  AF_INET,
  AF_INET6,
  type NeighborInfo,
  type NexthopInfo,
  NTF_SELF,
  NUD_PERMANENT,
  type RouteInfo,
  RT_TABLE_MAIN,
  RTN_BLACKHOLE,
  RTN_UNICAST,
  RTPROT_WEFT,
} from "../../netlink/index.js";
import {
  emptyObserved,
  type FdbEntry,
  fdbKey,
  neighborKey,
  type ObservedNeighbor,
  type ObservedNexthop,
  type ObservedState,
  observeFdb,
  observeNexthop,
  observeRoute,
  type RouteEntry,
  routeKey,
} from "./model.js";

/** ifindex -> name; entries on unknown devices are never ours. */
export type LinkNames = ReadonlyMap<number, string>;

/** IPv6 routes added with metric 0 are stored with metric 1024 (IP6_RT_PRIO_USER). */
const IP6_DEFAULT_METRIC = 1024;
const RTM_F_CLONED = 0x200;

export type RouteClass =
  | { owned: true; key: string; entry: RouteEntry }
  /** Someone else's route: its slot is taken; `entry` says what it is (an identical one is taken over). */
  | { owned: false; key: string; entry: RouteEntry }
  | undefined;

/**
 * `nexthops` resolves a route that names only its nexthop object: with the sysctl
 * net.ipv4.nexthop_compat_mode at 0 the kernel leaves out the gateway and device.
 */
export function classifyRoute(
  r: RouteInfo,
  names: LinkNames,
  nexthops?: ReadonlyMap<number, ObservedNexthop>,
): RouteClass {
  if (r.table !== RT_TABLE_MAIN || (r.family !== AF_INET && r.family !== AF_INET6)) return undefined;
  if (r.flags & RTM_F_CLONED) return undefined;
  const metric = r.family === AF_INET6 && r.priority === IP6_DEFAULT_METRIC ? 0 : r.priority;
  const key = routeKey(r.dst, metric);
  const entry: RouteEntry = {
    dst: r.dst,
    type: r.type === RTN_UNICAST ? "unicast" : r.type === RTN_BLACKHOLE ? "blackhole" : "other",
  };
  const nh = r.nhid !== undefined && !r.gateway && r.oif === undefined ? nexthops?.get(r.nhid) : undefined;
  if (r.gateway) entry.gateway = r.gateway;
  else if (nh?.gateway) entry.gateway = nh.gateway;
  if (r.oif !== undefined) entry.device = names.get(r.oif) ?? `if${r.oif}`;
  else if (nh?.device) entry.device = nh.device;
  if (r.onlink || nh?.onlink) entry.onlink = true;
  if (metric) entry.metric = metric;
  if (r.nhid !== undefined) entry.nhid = r.nhid;
  return { owned: r.protocol === RTPROT_WEFT, key, entry };
}

/** Nexthop objects: ours by protocol; groups and others only hold their ids. */
export function classifyNexthop(n: NexthopInfo, names: LinkNames): ObservedNexthop {
  const owned = n.protocol === RTPROT_WEFT && !n.group && !n.blackhole;
  return {
    id: n.id,
    owned,
    ...(n.gateway ? { gateway: n.gateway } : {}),
    ...(n.oif !== undefined ? { device: names.get(n.oif) ?? `if${n.oif}` } : {}),
    onlink: n.onlink,
  };
}

export function classifyNeighbor(
  n: NeighborInfo,
  names: LinkNames,
  managed: ReadonlySet<string>,
): { key: string; entry: ObservedNeighbor } | undefined {
  if (n.bridge || !n.ip) return undefined;
  const device = names.get(n.ifindex);
  if (!device || !managed.has(device)) return undefined;
  return {
    key: neighborKey(device, n.ip),
    entry: { ip: n.ip, mac: n.mac ?? "", device, permanent: (n.state & NUD_PERMANENT) !== 0 },
  };
}

/** Only permanent entries of the device's own table (NTF_SELF) with a remote are ours. */
export function classifyFdb(
  n: NeighborInfo,
  names: LinkNames,
  managed: ReadonlySet<string>,
): { key: string; entry: FdbEntry } | undefined {
  if (!n.bridge || !n.ip || !n.mac) return undefined;
  if (!(n.flags & NTF_SELF) || !(n.state & NUD_PERMANENT)) return undefined;
  const device = names.get(n.ifindex);
  if (!device || !managed.has(device)) return undefined;
  return { key: fdbKey(device, n.mac, n.ip), entry: { mac: n.mac, dst: n.ip, device } };
}

export function buildObserved(
  routes: readonly RouteInfo[],
  neighbors: readonly NeighborInfo[],
  fdb: readonly NeighborInfo[],
  names: LinkNames,
  managed: ReadonlySet<string>,
  nexthops: readonly NexthopInfo[] = [],
): ObservedState {
  const out = emptyObserved();
  for (const n of nexthops) observeNexthop(out, classifyNexthop(n, names));
  for (const r of routes) {
    const c = classifyRoute(r, names, out.nexthops);
    if (!c) continue;
    if (c.owned) observeRoute(out, c.key, c.entry);
    else {
      out.foreignRoutes.add(c.key);
      out.foreignEntries.set(c.key, c.entry);
    }
  }
  for (const n of neighbors) {
    const c = classifyNeighbor(n, names, managed);
    if (c) out.neighbors.set(c.key, c.entry);
  }
  for (const f of fdb) {
    const c = classifyFdb(f, names, managed);
    if (c) observeFdb(out, c.entry);
  }
  return out;
}
