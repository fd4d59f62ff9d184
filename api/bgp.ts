import type { Condition, LabelSelector, SecretKeyRef, WeftObject } from "./meta.js";

export interface BGPConfigurationSpec {
  /** Default 64512. */
  asNumber?: number;
  /** Default true; turned off automatically once route reflectors exist unless forced on. */
  nodeToNodeMesh?: boolean;
  /** Default 179. */
  listenPort?: number;
  /** Graceful restart time in seconds (default 120). */
  gracefulRestartSeconds?: number;
  keepaliveSeconds?: number;
  holdSeconds?: number;
  meshPassword?: SecretKeyRef;
}

export interface BGPStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  selectedNodes?: string[];
  expectedSessions?: number;
}

export type BGPConfiguration = WeftObject<"BGPConfiguration", BGPConfigurationSpec, BGPStatus>;

export interface BGPPeerSpec {
  /** External peer: its address and AS. Exactly one of peerIP and peerSelector. */
  peerIP?: string;
  asNumber?: number;
  /** Peering with the nodes this selects. */
  peerSelector?: LabelSelector;
  /** Nodes this applies to (empty: all); at most one of node and nodeSelector. */
  node?: string;
  nodeSelector?: LabelSelector;
  password?: SecretKeyRef;
  /** Remote TCP port (default 179). */
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
