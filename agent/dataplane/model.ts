/**
 * The kernel state the agent wants and the part of the kernel it owns, in one vocabulary.
 * Addresses, prefixes and MACs are kept in canonical text form (what iproute2 prints), so that
 * entries compare as strings.
 */

import { POOL_DEFAULTS, VXLAN_DEVICE } from "../../api/index.js";

/** The local VXLAN device when the intents say nothing else. */
export const DEFAULT_VXLAN = {
  name: VXLAN_DEVICE,
  vni: POOL_DEFAULTS.vni,
  port: POOL_DEFAULTS.vxlanPort,
} as const;
/** Outer IPv4 + UDP + VXLAN + inner Ethernet headers. */
export const VXLAN_OVERHEAD = 50;

export interface VxlanDeviceConfig {
  name: string;
  vni: number;
  port: number;
  /** Underlay source address of the tunnel. */
  localIP: string;
  /** The device's MAC (the node's VTEP MAC); kernel-chosen when absent. */
  mac?: string;
  /** The VTEP addresses on the device, one per family: `10.244.1.0/32`, `fd00:10:244::/128`. */
  addresses?: string[];
  /** Explicit MTU; otherwise the underlay device's MTU - 50. */
  mtu?: number;
  /** Underlay device by name; otherwise the device holding localIP. */
  underlayDevice?: string;
}

export interface RouteEntry {
  /** Canonical prefix. */
  dst: string;
  /** "other" only in observed state: an owned route of a kind Weft never programs. */
  type: "unicast" | "blackhole" | "other";
  gateway?: string;
  /** Output device; when absent the kernel resolves it from the gateway and any device is fine. */
  device?: string;
  onlink?: boolean;
  /** 0 when absent. */
  metric?: number;
  /** Observed only: the nexthop object the kernel route points at. */
  nhid?: number;
}

export interface NeighborEntry {
  ip: string;
  mac: string;
  device: string;
}

export interface FdbEntry {
  mac: string;
  /** Underlay IP of the remote VTEP. */
  dst: string;
  device: string;
}

export interface DesiredState {
  vxlan?: VxlanDeviceConfig;
  routes: RouteEntry[];
  neighbors: NeighborEntry[];
  fdb: FdbEntry[];
}

export interface ObservedNeighbor extends NeighborEntry {
  permanent: boolean;
}

/** A nexthop object in the kernel (ours: protocol RTPROT_WEFT). */
export interface ObservedNexthop {
  id: number;
  owned: boolean;
  gateway?: string;
  device?: string;
  onlink: boolean;
}

/** Weft shares one nexthop object among its routes with the same gateway, device and onlink. */
export const nexthopKey = (device: string, gateway: string, onlink: boolean | undefined) =>
  `${device} ${gateway}${onlink ? " onlink" : ""}`;

/** What the kernel holds of ours, plus the route slots taken by others (never touched). */
export interface ObservedState {
  /** Routes with our protocol in the main table, by routeKey. */
  routes: Map<string, RouteEntry>;
  /** routeKeys held by routes we do not own (main table). */
  foreignRoutes: Set<string>;
  /** What those routes are, where known: one identical to ours is taken over, not a conflict. */
  foreignEntries: Map<string, RouteEntry>;
  /** Neighbor entries on devices we manage, by neighborKey. */
  neighbors: Map<string, ObservedNeighbor>;
  /** Permanent FDB entries with a remote on devices we manage, by fdbKey. */
  fdb: Map<string, FdbEntry>;
  /**
   * The same FDB entries by fdbMacKey, then remote: what an incremental diff of one MAC reads.
   * Kept in step with `fdb` by observeFdb / forgetFdb.
   */
  fdbByMac: Map<string, Map<string, FdbEntry>>;
  /** Every nexthop object (ours and others': their ids are taken), by id. */
  nexthops: Map<number, ObservedNexthop>;
  /** Our nexthop objects by nexthopKey. */
  nexthopByKey: Map<string, number>;
  /** How many of our routes point at each of our nexthop objects... */
  nexthopRefs: Map<number, number>;
  /** ...and ours that none point at: garbage, deleted after each apply. */
  unusedNexthops: Set<number>;
}

export function emptyObserved(): ObservedState {
  return {
    routes: new Map(),
    foreignRoutes: new Set(),
    foreignEntries: new Map(),
    neighbors: new Map(),
    fdb: new Map(),
    fdbByMac: new Map(),
    nexthops: new Map(),
    nexthopByKey: new Map(),
    nexthopRefs: new Map(),
    unusedNexthops: new Set(),
  };
}

/** Records an owned route (by routeKey), keeping the nexthop reference counts. */
export function observeRoute(have: ObservedState, key: string, r: RouteEntry): void {
  const old = have.routes.get(key);
  have.routes.set(key, r);
  if (old?.nhid === r.nhid) return;
  if (old?.nhid !== undefined) unref(have, old.nhid);
  if (r.nhid !== undefined) ref(have, r.nhid);
}

export function forgetRoute(have: ObservedState, key: string): void {
  const old = have.routes.get(key);
  if (!old) return;
  have.routes.delete(key);
  if (old.nhid !== undefined) unref(have, old.nhid);
}

function ref(have: ObservedState, id: number): void {
  have.nexthopRefs.set(id, (have.nexthopRefs.get(id) ?? 0) + 1);
  have.unusedNexthops.delete(id);
}

function unref(have: ObservedState, id: number): void {
  const n = (have.nexthopRefs.get(id) ?? 1) - 1;
  if (n > 0) {
    have.nexthopRefs.set(id, n);
    return;
  }
  have.nexthopRefs.delete(id);
  if (have.nexthops.get(id)?.owned) have.unusedNexthops.add(id);
}

export function observeNexthop(have: ObservedState, nh: ObservedNexthop): void {
  forgetNexthop(have, nh.id);
  have.nexthops.set(nh.id, nh);
  if (!nh.owned) return;
  if (nh.gateway !== undefined && nh.device !== undefined) {
    have.nexthopByKey.set(nexthopKey(nh.device, nh.gateway, nh.onlink), nh.id);
  }
  if (!have.nexthopRefs.has(nh.id)) have.unusedNexthops.add(nh.id);
}

export function forgetNexthop(have: ObservedState, id: number): void {
  const old = have.nexthops.get(id);
  if (!old) return;
  have.nexthops.delete(id);
  have.unusedNexthops.delete(id);
  if (old.owned && old.gateway !== undefined && old.device !== undefined) {
    const k = nexthopKey(old.device, old.gateway, old.onlink);
    if (have.nexthopByKey.get(k) === id) have.nexthopByKey.delete(k);
  }
}

export function observeFdb(have: ObservedState, f: FdbEntry): void {
  have.fdb.set(fdbKey(f.device, f.mac, f.dst), f);
  const mk = fdbMacKey(f.device, f.mac);
  let remotes = have.fdbByMac.get(mk);
  if (!remotes) {
    remotes = new Map();
    have.fdbByMac.set(mk, remotes);
  }
  remotes.set(f.dst, f);
}

export function forgetFdb(have: ObservedState, f: FdbEntry): void {
  have.fdb.delete(fdbKey(f.device, f.mac, f.dst));
  const mk = fdbMacKey(f.device, f.mac);
  const remotes = have.fdbByMac.get(mk);
  if (remotes?.delete(f.dst) && remotes.size === 0) have.fdbByMac.delete(mk);
}

/** A route's slot in the main table: one prefix and metric hold one route. */
export const routeKey = (dst: string, metric = 0) => (metric ? `${dst} metric ${metric}` : dst);
export const neighborKey = (device: string, ip: string) => `${device} ${ip}`;
export const fdbKey = (device: string, mac: string, dst: string) => `${device} ${mac} ${dst}`;
/** One remote per MAC is what Weft wants; the kernel may hold several. */
export const fdbMacKey = (device: string, mac: string) => `${device} ${mac}`;

export function sameRoute(want: RouteEntry, have: RouteEntry): boolean {
  return (
    want.type === have.type &&
    want.gateway === have.gateway &&
    Boolean(want.onlink) === Boolean(have.onlink) &&
    (want.device === undefined || want.device === have.device)
  );
}

/** Two desired entries are the same (all fields; sameRoute is the looser desired-vs-kernel check). */
export const sameDesiredRoute = (a: RouteEntry, b: RouteEntry) =>
  a.dst === b.dst &&
  a.type === b.type &&
  a.gateway === b.gateway &&
  a.device === b.device &&
  Boolean(a.onlink) === Boolean(b.onlink) &&
  (a.metric ?? 0) === (b.metric ?? 0);
export const sameNeighbor = (a: NeighborEntry, b: NeighborEntry) =>
  a.mac === b.mac && a.ip === b.ip && a.device === b.device;
export const sameFdb = (a: FdbEntry, b: FdbEntry) =>
  a.mac === b.mac && a.dst === b.dst && a.device === b.device;

export type Action =
  | { kind: "neighbor"; op: "set" | "del"; entry: NeighborEntry }
  | { kind: "fdb"; op: "set" | "del"; entry: FdbEntry }
  | { kind: "route"; op: "set" | "del"; entry: RouteEntry };

export function describeAction(a: Action): string {
  const e = a.entry as unknown as Record<string, unknown>;
  if (a.kind === "route") {
    const r = a.entry;
    const via = r.type === "blackhole" ? "blackhole" : `via ${r.gateway ?? "-"}`;
    return `${a.op} route ${r.dst} ${via}${r.device ? ` dev ${r.device}` : ""}${r.onlink ? " onlink" : ""}`;
  }
  if (a.kind === "neighbor") return `${a.op} neighbor ${e.ip} lladdr ${e.mac} dev ${e.device}`;
  return `${a.op} fdb ${e.mac} dst ${e.dst} dev ${e.device}`;
}
