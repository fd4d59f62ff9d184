import { type Condition, ConditionsSchema, CountSchema, type WeftObject } from "./meta.js";
import { AGE_COLUMN, immutable, type KindCRD, ObjectNameSchema, type TypeSchema } from "./schema.js";

/** One BGP session. */
export interface BGPSessionStatus {
  /** Name of the session (the BIRD protocol name). */
  peer: string;
  /** Address of the peer. */
  peerIP: string;
  /** AS number of the peer. */
  asNumber: number;
  /** Session state as BIRD reports it, such as Established, Active or Idle. */
  state: string;
  /** When the session entered its current state (its uptime starts there). */
  since?: string;
  /** Routes received from the peer and accepted. */
  routesImported?: number;
  /** Routes announced to the peer. */
  routesExported?: number;
  /** Extra detail from BIRD, such as the last error. */
  info?: string;
  /** BFD session state (Up, Down, Init, AdminDown) when BFD is on for this session. */
  bfd?: string;
  /** What asked for the session: mesh, route-reflector or BGPPeer/<name>. */
  source?: string;
}

export const BGPSessionStatusSchema: TypeSchema<BGPSessionStatus> = {
  fields: {
    peer: { minLength: 1, maxLength: 253 },
    peerIP: { maxLength: 39 },
    asNumber: { format: "int64", minimum: 0, maximum: 4294967295 },
    state: { maxLength: 64 },
    since: { maxLength: 64 },
    routesImported: CountSchema,
    routesExported: CountSchema,
    info: { maxLength: 1024 },
    bfd: { maxLength: 16 },
    source: { maxLength: 270 },
  },
};

/** The node's underlay as its agent finds it in the kernel, and the MTUs derived from it. */
export interface UnderlayStatus {
  /** Device holding the node's underlay address. */
  device: string;
  /** MTU of the underlay device. */
  mtu: number;
  /** The device's addresses with their prefix, such as 192.0.2.11/24: the subnets CrossSubnet compares. */
  addresses?: string[];
  /** MTU of the VXLAN device (the underlay's minus 50 unless a pool sets it); absent without one. */
  vxlanMTU?: number;
  /** MTU new pods on this node get. */
  podMTU: number;
}

export const UnderlayStatusSchema: TypeSchema<UnderlayStatus> = {
  fields: {
    device: { maxLength: 15 },
    mtu: { format: "int32", minimum: 0 },
    addresses: { maxItems: 64, listType: "atomic", items: { maxLength: 43 } },
    vxlanMTU: { format: "int32", minimum: 0 },
    podMTU: { format: "int32", minimum: 0 },
  },
};

/** CrossSubnet: how this node reaches one peer's pods of one family. */
export interface PeerPath {
  /** The peer node. */
  node: string;
  /** IPv4 or IPv6. */
  family: "IPv4" | "IPv6";
  /** Direct (via the peer's underlay address, same subnet) or VXLAN. */
  path: "Direct" | "VXLAN";
}

export const PeerPathSchema: TypeSchema<PeerPath> = {
  fields: { node: { maxLength: 253 } },
};

/** Names the node; everything else is status. */
export interface NodeNetworkStatusSpec {
  /** Immutable. Name of the node this status belongs to. */
  node: string;
}

export const NodeNetworkStatusSpecSchema: TypeSchema<NodeNetworkStatusSpec> = {
  fields: { node: { ...ObjectNameSchema, validations: [immutable("spec.node")] } },
};

/** The node's dataplane as its agent sees it. */
export interface NodeNetworkStatusStatus {
  /** The metadata.generation of the spec this status describes. */
  observedGeneration?: number;
  /** Conditions of the node's dataplane, such as Ready. */
  conditions?: Condition[];
  /** RouteIntent name to the metadata.generation of it last applied to the kernel. */
  appliedIntents?: Record<string, number>;
  /** Counts of kernel entries the agent owns (marked with Weft's route protocol). */
  owned?: {
    /** Routes owned by the agent. */
    routes: number;
    /** Neighbor (ARP/NDP) entries owned by the agent. */
    neighbors: number;
    /** VXLAN forwarding database entries owned by the agent. */
    fdb: number;
  };
  /** BGP sessions of the node's BIRD, one per peer. */
  bgpSessions?: BGPSessionStatus[];
  /** The node's underlay as its agent finds it in the kernel, and the MTUs derived from it. */
  underlay?: UnderlayStatus;
  /** CrossSubnet peers and the path chosen to each, per family. */
  peerPaths?: PeerPath[];
  /** Outgoing NAT on this node. */
  nat?: {
    /** The nftables table the agent owns, such as "inet weft". */
    table: string;
    /** Pools whose pods' traffic to destinations outside every pool is masqueraded. */
    pools: string[];
  };
  /** When the agent last finished a full sync of the kernel against the intents. */
  lastSyncTime?: string;
}

export const NodeNetworkStatusStatusSchema: TypeSchema<NodeNetworkStatusStatus> = {
  fields: {
    observedGeneration: CountSchema,
    conditions: ConditionsSchema,
    appliedIntents: { maxProperties: 100000, values: CountSchema },
    owned: { fields: { routes: CountSchema, neighbors: CountSchema, fdb: CountSchema } },
    bgpSessions: { maxItems: 10000, listType: "map", listMapKeys: ["peer"] },
    peerPaths: { maxItems: 20000, listType: "map", listMapKeys: ["node", "family"] },
    nat: {
      fields: {
        table: { maxLength: 64 },
        pools: { maxItems: 1000, listType: "set", items: { maxLength: 253 } },
      },
    },
    lastSyncTime: { format: "date-time" },
  },
};

/**
 * NodeNetworkStatus is what one node's weft-agent has applied to its kernel and what it
 * sees: intent generations, counts of owned entries, BGP sessions. One per node, named
 * after the node, written only by that node's agent; weftctl node status prints it.
 */
export type NodeNetworkStatus = WeftObject<
  "NodeNetworkStatus",
  NodeNetworkStatusSpec,
  NodeNetworkStatusStatus
>;

export const NodeNetworkStatusCRD: KindCRD = {
  shortNames: ["nns"],
  printerColumns: [
    { name: "Node", type: "string", jsonPath: ".spec.node", description: "The node this status belongs to." },
    {
      name: "Ready",
      type: "string",
      jsonPath: '.status.conditions[?(@.type=="Ready")].status',
      description: "Whether the node's dataplane matches its intents.",
    },
    {
      name: "Routes",
      type: "integer",
      jsonPath: ".status.owned.routes",
      description: "Routes the agent owns in the kernel.",
    },
    {
      name: "Neighbors",
      type: "integer",
      jsonPath: ".status.owned.neighbors",
      description: "Neighbor entries the agent owns.",
    },
    {
      name: "FDB",
      type: "integer",
      jsonPath: ".status.owned.fdb",
      description: "FDB entries the agent owns.",
    },
    {
      name: "LastSync",
      type: "date",
      jsonPath: ".status.lastSyncTime",
      description: "When the agent last finished a full sync.",
    },
    AGE_COLUMN,
  ],
  validations: [
    {
      rule: "self.metadata.name == self.spec.node",
      message: "metadata.name must equal spec.node (one NodeNetworkStatus per node, named after it)",
    },
  ],
};
