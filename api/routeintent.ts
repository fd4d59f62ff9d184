import type { Encapsulation } from "./ippool.js";
import type { Condition, WeftObject } from "./meta.js";

export interface IntentRoute {
  /** Destination CIDR (a block of the node). */
  dst: string;
  /** Next hop: the VTEP address (VXLAN) or the node's underlay IP (host-gw). */
  gateway?: string;
  /** Output device on the receiving node, e.g. `weft.vxlan`; omitted for host-gw. */
  device?: string;
  onlink?: boolean;
}

/** A permanent neighbor entry; unique by (ip, device). */
export interface IntentNeighbor {
  ip: string;
  mac: string;
  device: string;
}

/** A VXLAN FDB entry; unique by (mac, dst, device). */
export interface IntentFDB {
  mac: string;
  /** Underlay IP of the node the MAC lives behind. */
  dst: string;
  device: string;
}

/** How every other node reaches this node's pods. One object per node, named after the node. */
export interface RouteIntentSpec {
  /** Immutable; equals metadata.name. */
  node: string;
  underlayIP: string;
  encapsulation: Encapsulation;
  /** VXLAN only (required once the node has VXLAN routes): the node's VTEP. */
  vtep?: { ip: string; mac: string; vni: number; port: number };
  /** Unique by dst. */
  routes: IntentRoute[];
  neighbors: IntentNeighbor[];
  fdb: IntentFDB[];
}

export interface RouteIntentStatus {
  observedGeneration?: number;
  conditions?: Condition[];
}

export type RouteIntent = WeftObject<"RouteIntent", RouteIntentSpec, RouteIntentStatus>;
