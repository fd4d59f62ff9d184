import type { Condition, WeftObject } from "./meta.js";

export interface BGPSessionStatus {
  /** Session name (the BIRD protocol name); unique per node. */
  peer: string;
  peerIP: string;
  asNumber: number;
  /** As BIRD reports it: Established, Active, Idle, ... */
  state: string;
  /** When the session entered its current state (uptime counts from here). */
  since?: string;
  routesImported?: number;
  routesExported?: number;
  info?: string;
}

/** Written only by the node's own agent. The spec names the node; everything else is status. */
export interface NodeNetworkStatusSpec {
  node: string;
}

export interface NodeNetworkStatusStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  /** RouteIntent name -> metadata.generation last applied to the kernel. */
  appliedIntents?: Record<string, number>;
  owned?: { routes: number; neighbors: number; fdb: number };
  bgpSessions?: BGPSessionStatus[];
  lastSyncTime?: string;
}

export type NodeNetworkStatus = WeftObject<
  "NodeNetworkStatus",
  NodeNetworkStatusSpec,
  NodeNetworkStatusStatus
>;
