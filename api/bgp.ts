import {
  type Condition,
  ConditionsSchema,
  CountSchema,
  type LabelSelector,
  type SecretKeyRef,
  type WeftObject,
} from "./meta.js";
import { AGE_COLUMN, type KindCRD, ObjectNameSchema, PATTERNS, type TypeSchema } from "./schema.js";

/**
 * Bidirectional Forwarding Detection on BGP sessions: a dead peer is noticed after
 * intervalMilliseconds x multiplier instead of the hold time.
 */
export interface BFDSpec {
  /** Turn BFD on for these sessions (default false). */
  enabled?: boolean;
  /** BFD transmit and receive interval in milliseconds, 10-60000 (default 300). */
  intervalMilliseconds?: number;
  /** BFD packets missed before the peer counts as down, 1-255 (default 3). */
  multiplier?: number;
}

/**
 * Automatic route reflectors: weft-controller chooses count nodes (nodes annotated
 * weft.dev/route-reflector-cluster-id count too, and always win), spread over the values of
 * zoneLabel, and replaces one whose node goes NotReady or away, one at a time.
 */
export interface RouteReflectorsSpec {
  /** How many nodes reflect routes, 1-100. */
  count: number;
  /** Node label whose values are zones, such as topology.kubernetes.io/zone. */
  zoneLabel?: string;
}

/** Communities added per prefix class to every route sent to external peers. */
export interface PrefixClassCommunities {
  /** Communities of the pod address blocks. */
  blocks?: string[];
  /** Communities of the serviceClusterIPs ranges. */
  serviceClusterIPs?: string[];
  /** Communities of the serviceLoadBalancerIPs ranges and LoadBalancer addresses. */
  serviceLoadBalancerIPs?: string[];
}

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
  /** Automatic route reflectors, chosen and kept by weft-controller. */
  routeReflectors?: RouteReflectorsSpec;
  /** BFD on the node-to-node sessions (mesh and reflectors). */
  bfd?: BFDSpec;
  /** Service cluster IP ranges (CIDRs) the Service nodes announce to external peers. */
  serviceClusterIPs?: string[];
  /**
   * LoadBalancer IP ranges (CIDRs) the Service nodes announce to external peers; LoadBalancer
   * ingress addresses inside them with externalTrafficPolicy Local are announced one by one from
   * the nodes with a ready endpoint.
   */
  serviceLoadBalancerIPs?: string[];
  /** The nodes that announce Service addresses (default every BGP node). */
  serviceNodeSelector?: LabelSelector;
  /** Communities added per prefix class to every route sent to external peers. */
  communities?: PrefixClassCommunities;
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
  /** Of expectedSessions, how many the nodes report Established. */
  establishedSessions?: number;
}

/** One route reflector. */
export interface RouteReflectorStatus {
  /** The node that reflects. */
  node: string;
  /** The node's value of zoneLabel. */
  zone?: string;
  /** Route reflector cluster id. */
  clusterID: string;
  /** Automatic (chosen by weft-controller) or Annotation (the node is annotated). */
  source: "Automatic" | "Annotation";
  /** Joining (its sessions are coming up; the one it replaces stays) or Active. */
  state: "Joining" | "Active";
  /** Why this node was chosen. */
  reason: string;
  /** When it was chosen. */
  since: string;
}

/** Observed state, written by weft-controller. */
export interface BGPConfigurationStatus extends BGPStatus {
  /** The route reflectors, chosen by weft-controller or annotated, and why. */
  routeReflectors?: RouteReflectorStatus[];
}

/** The singleton's only allowed name. */
export const BGP_CONFIGURATION_NAME = "default";

/** Cluster id of the reflectors weft-controller chooses (annotated nodes bring their own). */
export const AUTOMATIC_RR_CLUSTER_ID = "255.0.0.1";

/**
 * BGPConfiguration holds the cluster-wide BGP settings used with encapsulation BGP: the
 * nodes' AS number, the node-to-node mesh, timers. It is a singleton named default.
 */
export type BGPConfiguration = WeftObject<"BGPConfiguration", BGPConfigurationSpec, BGPConfigurationStatus>;

/** Who peers with whom. */
export interface BGPPeerSpec {
  /**
   * Address of an external peer (IPv4 or IPv6). Exactly one of peerIP and peerSelector
   * is set; peerIP needs asNumber. A peer in the nodes' own AS is taken for a route
   * reflector: routes inside the pools are learned from it.
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
  /** BFD on these sessions. */
  bfd?: BFDSpec;
  /** Communities added to every route sent to this peer (external peers). */
  communities?: string[];
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

export const BFD_DEFAULTS = {
  intervalMilliseconds: 300,
  multiplier: 3,
};

export const BFDSpecSchema: TypeSchema<BFDSpec> = {
  fields: {
    intervalMilliseconds: { format: "int32", minimum: 10, maximum: 60000 },
    multiplier: { format: "int32", minimum: 1, maximum: 255 },
  },
};

export const RouteReflectorsSpecSchema: TypeSchema<RouteReflectorsSpec> = {
  fields: {
    count: { format: "int32", minimum: 1, maximum: 100 },
    zoneLabel: { maxLength: 317, pattern: PATTERNS.labelKey },
  },
};

/** A list of standard communities, two numbers 0-65535 such as 65000:100. */
const COMMUNITIES: TypeSchema<string[]> = {
  maxItems: 32,
  listType: "set",
  items: {
    maxLength: 11,
    pattern: "^[0-9]{1,5}:[0-9]{1,5}$",
    validations: [
      {
        rule: "self.split(':').all(p, int(p) <= 65535)",
        message: "a community is two numbers 0-65535 separated by a colon, such as 65000:100",
      },
    ],
  },
};

export const PrefixClassCommunitiesSchema: TypeSchema<PrefixClassCommunities> = {
  fields: { blocks: COMMUNITIES, serviceClusterIPs: COMMUNITIES, serviceLoadBalancerIPs: COMMUNITIES },
};

/** Service ranges: CIDRs with their host bits clear. */
const SERVICE_CIDRS: TypeSchema<string[]> = {
  maxItems: 64,
  listType: "set",
  items: {
    maxLength: 43,
    validations: [
      {
        rule: "isCIDR(self) && cidr(self) == cidr(self).masked()",
        message: "must be a CIDR with its host bits clear, such as 10.96.0.0/12",
      },
    ],
  },
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
    serviceClusterIPs: SERVICE_CIDRS,
    serviceLoadBalancerIPs: SERVICE_CIDRS,
  },
};

export const BGPStatusSchema: TypeSchema<BGPStatus> = {
  fields: {
    observedGeneration: CountSchema,
    conditions: ConditionsSchema,
    selectedNodes: { maxItems: 10000, listType: "set", items: { maxLength: 253 } },
    expectedSessions: CountSchema,
    establishedSessions: CountSchema,
  },
};

export const RouteReflectorStatusSchema: TypeSchema<RouteReflectorStatus> = {
  fields: {
    node: { maxLength: 253 },
    zone: { maxLength: 63 },
    clusterID: { maxLength: 15 },
    reason: { maxLength: 1024 },
    since: { maxLength: 64 },
  },
};

export const BGPConfigurationStatusSchema: TypeSchema<BGPConfigurationStatus> = {
  fields: {
    ...BGPStatusSchema.fields,
    routeReflectors: { maxItems: 200, listType: "map", listMapKeys: ["node"] },
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
      name: "Established",
      type: "integer",
      jsonPath: ".status.establishedSessions",
      description: "Node-to-node sessions the nodes report Established.",
    },
    {
      name: "Expected",
      type: "integer",
      jsonPath: ".status.expectedSessions",
      description: "Node-to-node sessions the configuration makes.",
    },
    {
      name: "Reflectors",
      type: "string",
      jsonPath: ".status.routeReflectors[*].node",
      description: "The route reflectors.",
    },
    {
      name: "Ready",
      type: "string",
      jsonPath: '.status.conditions[?(@.type=="Ready")].status',
      description: "Whether every expected node-to-node session is Established.",
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
    communities: COMMUNITIES,
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
      name: "Established",
      type: "integer",
      jsonPath: ".status.establishedSessions",
      description: "Sessions the nodes report Established.",
    },
    {
      name: "Expected",
      type: "integer",
      jsonPath: ".status.expectedSessions",
      description: "BGP sessions this peer should produce.",
    },
    {
      name: "Ready",
      type: "string",
      jsonPath: '.status.conditions[?(@.type=="Ready")].status',
      description: "Whether every expected session is Established.",
    },
    AGE_COLUMN,
  ],
};
