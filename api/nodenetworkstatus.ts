import type { Condition, WeftObject } from "./meta.js";

export interface BGPSessionStatus {
  peer: string;
  peerIP: string;
  asNumber: number;
  state: string;
  /** Seconds since the session last changed state. */
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
