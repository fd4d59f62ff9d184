/**
 * The kernel state the agent wants and the part of the kernel it owns, in one vocabulary.
 * Addresses, prefixes and MACs are kept in canonical text form (what iproute2 prints), so that
 * entries compare as strings.
 */

export const DEFAULT_VXLAN = { name: "weft.vxlan", vni: 4096, port: 4789 } as const;
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
  /** The VTEP address on the device, `10.244.1.0/32`. */
  address?: string;
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

/** What the kernel holds of ours, plus the route slots taken by others (never touched). */
export interface ObservedState {
  /** Routes with our protocol in the main table, by routeKey. */
  routes: Map<string, RouteEntry>;
  /** routeKeys held by routes we do not own (main table). */
  foreignRoutes: Set<string>;
  /** Neighbor entries on devices we manage, by neighborKey. */
  neighbors: Map<string, ObservedNeighbor>;
  /** Permanent FDB entries with a remote on devices we manage, by fdbKey. */
  fdb: Map<string, FdbEntry>;
}

export function emptyObserved(): ObservedState {
  return { routes: new Map(), foreignRoutes: new Set(), neighbors: new Map(), fdb: new Map() };
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
