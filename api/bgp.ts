import {
  type Condition,
  ConditionsSchema,
  CountSchema,
  type LabelSelector,
  type SecretKeyRef,
  type WeftObject,
} from "./meta.js";
import { AGE_COLUMN, type KindCRD, ObjectNameSchema, type TypeSchema } from "./schema.js";

/** Cluster-wide BGP settings. */
export interface BGPConfigurationSpec {
  /** AS number of every node, 1-4294967295 (default 64512, a private AS). */
  asNumber?: number;
  /**
   * Every node peers with every other node (default true). Turned off automatically
   * once route reflectors exist (nodes annotated weft.dev/route-reflector-cluster-id)
   * unless meshWithReflectors is true.
   */
  nodeToNodeMesh?: boolean;
  /**
   * Keep the node-to-node mesh between route reflector clients even when route
   * reflectors exist (default false: reflectors replace the mesh). Only meaningful
   * while nodeToNodeMesh is true.
   */
  meshWithReflectors?: boolean;
  /** TCP port BIRD listens on for BGP, 1-65535 (default 179). */
  listenPort?: number;
  /** Graceful restart time in seconds, 0-4095 (default 120); 0 turns graceful restart off. */
  gracefulRestartSeconds?: number;
  /** Keepalive interval in seconds, 1-21845 (default 30); shorter than holdSeconds. */
  keepaliveSeconds?: number;
  /** Hold time in seconds, 0 (no keepalives) or 3-65535 (default 90). */
  holdSeconds?: number;
  /** Optional TCP MD5 password of the node-to-node mesh sessions, a key of a Secret. */
  meshPassword?: SecretKeyRef;
}

/** Observed state, written by weft-controller. */
export interface BGPStatus {
  /** The metadata.generation of the spec this status describes. */
  observedGeneration?: number;
  /** Conditions, such as Ready. */
  conditions?: Condition[];
  /** Names of the nodes this object currently applies to. */
  selectedNodes?: string[];
  /** Number of BGP sessions this object should produce across the cluster. */
  expectedSessions?: number;
}

/** The singleton's only allowed name. */
export const BGP_CONFIGURATION_NAME = "default";

/**
 * BGPConfiguration holds the cluster-wide BGP settings used with encapsulation BGP: the
 * nodes' AS number, the node-to-node mesh, timers. It is a singleton named default.
 */
export type BGPConfiguration = WeftObject<"BGPConfiguration", BGPConfigurationSpec, BGPStatus>;

/** Who peers with whom. */
export interface BGPPeerSpec {
  /**
   * Address of an external peer (IPv4 or IPv6). Exactly one of peerIP and peerSelector
   * is set; peerIP needs asNumber.
   */
  peerIP?: string;
  /**
   * AS number of the external peer, 1-4294967295. For peerSelector peerings it may be
   * left unset: the selected nodes' AS from BGPConfiguration.
   */
  asNumber?: number;
  /** Peer with the nodes this label selector chooses (for example route reflectors) instead of an external router. */
  peerSelector?: LabelSelector;
  /** Only this node peers. At most one of node and nodeSelector; neither means all nodes. */
  node?: string;
  /** The nodes that peer. At most one of node and nodeSelector; neither means all nodes. */
  nodeSelector?: LabelSelector;
  /** Optional TCP MD5 password of the sessions, a key of a Secret. */
  password?: SecretKeyRef;
  /** Remote TCP port, 1-65535 (default 179, or the nodes' listenPort for peerSelector peerings). */
  port?: number;
}

/**
 * BGPPeer makes nodes peer over BGP, either with an external router (peerIP and asNumber)
 * or with the nodes that peerSelector chooses (for example route reflectors). It applies
 * to the nodes chosen by nodeSelector, to one node, or to all nodes when neither is set.
 */
export type BGPPeer = WeftObject<"BGPPeer", BGPPeerSpec, BGPStatus>;

export const BGP_DEFAULTS = {
  asNumber: 64512,
  nodeToNodeMesh: true,
  listenPort: 179,
  gracefulRestartSeconds: 120,
  keepaliveSeconds: 30,
  holdSeconds: 90,
};

const AS_NUMBER: TypeSchema<number> = { format: "int64", minimum: 1, maximum: 4294967295 };
const PORT: TypeSchema<number> = { format: "int32", minimum: 1, maximum: 65535 };

export const BGPConfigurationSpecSchema: TypeSchema<BGPConfigurationSpec> = {
  validations: [
    {
      rule: "!has(self.keepaliveSeconds) || !has(self.holdSeconds) || self.holdSeconds == 0 || self.keepaliveSeconds < self.holdSeconds",
      fieldPath: ".keepaliveSeconds",
      message: "spec.keepaliveSeconds must be shorter than spec.holdSeconds",
    },
  ],
  fields: {
    asNumber: { ...AS_NUMBER, default: BGP_DEFAULTS.asNumber },
    nodeToNodeMesh: { default: BGP_DEFAULTS.nodeToNodeMesh },
    listenPort: { ...PORT, default: BGP_DEFAULTS.listenPort },
    gracefulRestartSeconds: { format: "int32", minimum: 0, maximum: 4095 },
    keepaliveSeconds: { format: "int32", minimum: 1, maximum: 21845 },
    holdSeconds: {
      format: "int32",
      minimum: 0,
      maximum: 65535,
      validations: [{ rule: "self == 0 || self >= 3", message: "spec.holdSeconds must be 0 or at least 3" }],
    },
  },
};

export const BGPStatusSchema: TypeSchema<BGPStatus> = {
  fields: {
    observedGeneration: CountSchema,
    conditions: ConditionsSchema,
    selectedNodes: { maxItems: 10000, listType: "set", items: { maxLength: 253 } },
    expectedSessions: CountSchema,
  },
};

export const BGPConfigurationCRD: KindCRD = {
  shortNames: ["bgpconfig"],
  optionalSpec: true,
  printerColumns: [
    { name: "AS", type: "integer", jsonPath: ".spec.asNumber", description: "AS number of the nodes." },
    {
      name: "Mesh",
      type: "boolean",
      jsonPath: ".spec.nodeToNodeMesh",
      description: "Whether every node peers with every other node.",
    },
    { name: "Port", type: "integer", jsonPath: ".spec.listenPort", description: "TCP port BIRD listens on." },
    {
      name: "Ready",
      type: "string",
      jsonPath: '.status.conditions[?(@.type=="Ready")].status',
      description: "Whether the configuration is applied.",
    },
    AGE_COLUMN,
  ],
  validations: [
    {
      rule: `self.metadata.name == '${BGP_CONFIGURATION_NAME}'`,
      message: `metadata.name must be ${BGP_CONFIGURATION_NAME} (BGPConfiguration is a singleton)`,
    },
  ],
};

export const BGPPeerSpecSchema: TypeSchema<BGPPeerSpec> = {
  validations: [
    {
      rule: "has(self.peerIP) || has(self.peerSelector)",
      fieldPath: ".peerIP",
      reason: "FieldValueRequired",
      message: "set one of spec.peerIP (an external peer) and spec.peerSelector (peering with nodes)",
    },
    {
      rule: "!(has(self.peerIP) && has(self.peerSelector))",
      fieldPath: ".peerSelector",
      reason: "FieldValueForbidden",
      message: "spec.peerIP and spec.peerSelector are mutually exclusive; set exactly one",
    },
    {
      rule: "!(has(self.node) && has(self.nodeSelector))",
      fieldPath: ".nodeSelector",
      reason: "FieldValueForbidden",
      message: "spec.node and spec.nodeSelector are mutually exclusive; set at most one",
    },
    {
      rule: "!has(self.peerIP) || has(self.asNumber)",
      fieldPath: ".asNumber",
      reason: "FieldValueRequired",
      message: "spec.asNumber is required for an external peer (spec.peerIP)",
    },
  ],
  fields: {
    peerIP: {
      minLength: 1,
      maxLength: 39,
      validations: [
        {
          rule: "isIP(self)",
          message: "spec.peerIP must be an IPv4 or IPv6 address such as 192.0.2.1 or 2001:db8::1",
        },
        {
          rule: "!isIP(self) || !(ip(self).isUnspecified() || ip(self).isLinkLocalMulticast() || cidr('224.0.0.0/4').containsIP(self) || cidr('ff00::/8').containsIP(self))",
          message: "spec.peerIP must be a unicast address",
        },
      ],
    },
    asNumber: AS_NUMBER,
    node: ObjectNameSchema,
    port: PORT,
  },
};

export const BGPPeerCRD: KindCRD = {
  shortNames: ["bgpp"],
  printerColumns: [
    {
      name: "PeerIP",
      type: "string",
      jsonPath: ".spec.peerIP",
      description: "Address of the external peer.",
    },
    { name: "AS", type: "integer", jsonPath: ".spec.asNumber", description: "AS number of the peer." },
    {
      name: "Node",
      type: "string",
      jsonPath: ".spec.node",
      description: "The one node that peers, when set.",
    },
    { name: "Port", type: "integer", jsonPath: ".spec.port", priority: 1, description: "Remote TCP port." },
    {
      name: "Sessions",
      type: "integer",
      jsonPath: ".status.expectedSessions",
      description: "BGP sessions this peer should produce.",
    },
    {
      name: "Ready",
      type: "string",
      jsonPath: '.status.conditions[?(@.type=="Ready")].status',
      description: "Whether the sessions are configured.",
    },
    AGE_COLUMN,
  ],
};
