/**
 * Kernel entries (as decoded from dumps and events) -> the observed state: what we own, and the
 * route slots others hold. Pure, shared by the full resync and the event path.
 */
import {
  AF_INET,
  AF_INET6,
  NTF_SELF,
  NUD_PERMANENT,
  RT_TABLE_MAIN,
  RTN_BLACKHOLE,
  RTN_UNICAST,
  RTPROT_WEFT,
} from "../netlink/constants.js";
import type { NeighborInfo, RouteInfo } from "../netlink/decode.js";
import {
  type FdbEntry,
  fdbKey,
  neighborKey,
  type ObservedNeighbor,
  type ObservedState,
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
  | { owned: false; key: string }
  | undefined;

export function classifyRoute(r: RouteInfo, names: LinkNames): RouteClass {
  if (r.table !== RT_TABLE_MAIN || (r.family !== AF_INET && r.family !== AF_INET6)) return undefined;
  if (r.flags & RTM_F_CLONED) return undefined;
  const metric = r.family === AF_INET6 && r.priority === IP6_DEFAULT_METRIC ? 0 : r.priority;
  const key = routeKey(r.dst, metric);
  if (r.protocol !== RTPROT_WEFT) return { owned: false, key };
  const entry: RouteEntry = {
    dst: r.dst,
    type: r.type === RTN_UNICAST ? "unicast" : r.type === RTN_BLACKHOLE ? "blackhole" : "other",
  };
  if (r.gateway) entry.gateway = r.gateway;
  if (r.oif !== undefined) entry.device = names.get(r.oif) ?? `if${r.oif}`;
  if (r.onlink) entry.onlink = true;
  if (metric) entry.metric = metric;
  return { owned: true, key, entry };
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
): ObservedState {
  const out: ObservedState = {
    routes: new Map(),
    foreignRoutes: new Set(),
    neighbors: new Map(),
    fdb: new Map(),
  };
  for (const r of routes) {
    const c = classifyRoute(r, names);
    if (!c) continue;
    if (c.owned) out.routes.set(c.key, c.entry);
    else out.foreignRoutes.add(c.key);
  }
  for (const n of neighbors) {
    const c = classifyNeighbor(n, names, managed);
    if (c) out.neighbors.set(c.key, c.entry);
  }
  for (const f of fdb) {
    const c = classifyFdb(f, names, managed);
    if (c) out.fdb.set(c.key, c.entry);
  }
  return out;
}
