import type { Condition, LabelSelector, SecretKeyRef, WeftObject } from "./meta.js";

export interface BGPConfigurationSpec {
  /** Default 64512. */
  asNumber?: number;
  /** Default true; turned off automatically once route reflectors exist unless forced on. */
  nodeToNodeMesh?: boolean;
  /**
   * Keep the node-to-node mesh between route reflector clients even when nodes carry the
   * `weft.dev/route-reflector-cluster-id` annotation (default false: reflectors replace the mesh).
   * Only meaningful while nodeToNodeMesh is true.
   */
  meshWithReflectors?: boolean;
  /** Default 179. */
  listenPort?: number;
  /** Graceful restart time in seconds, 0-4095 (default 120; 0 turns it off). */
  gracefulRestartSeconds?: number;
  /** 1-21845 (default 30), shorter than holdSeconds. */
  keepaliveSeconds?: number;
  /** 0 or 3-65535 (default 90). */
  holdSeconds?: number;
  meshPassword?: SecretKeyRef;
}

export interface BGPStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  selectedNodes?: string[];
  expectedSessions?: number;
}

/** The singleton's only allowed name. */
export const BGP_CONFIGURATION_NAME = "default";

export type BGPConfiguration = WeftObject<"BGPConfiguration", BGPConfigurationSpec, BGPStatus>;

export interface BGPPeerSpec {
  /** External peer: its address and AS. Exactly one of peerIP and peerSelector. */
  peerIP?: string;
  /** Required with peerIP; unset with peerSelector means the nodes' own AS. */
  asNumber?: number;
  /** Peering with the nodes this selects. */
  peerSelector?: LabelSelector;
  /** Nodes this applies to (empty: all); at most one of node and nodeSelector. */
  node?: string;
  nodeSelector?: LabelSelector;
  password?: SecretKeyRef;
  /** Remote TCP port (default 179, or the nodes' listenPort for peerSelector peerings). */
  port?: number;
}

export type BGPPeer = WeftObject<"BGPPeer", BGPPeerSpec, BGPStatus>;

export const BGP_DEFAULTS = {
  asNumber: 64512,
  nodeToNodeMesh: true,
  listenPort: 179,
  gracefulRestartSeconds: 120,
  keepaliveSeconds: 30,
  holdSeconds: 90,
};
