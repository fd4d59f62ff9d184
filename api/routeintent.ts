import type { Encapsulation } from "./ippool.js";
import { type Condition, ConditionsSchema, CountSchema, type WeftObject } from "./meta.js";
import {
  AGE_COLUMN,
  cel,
  immutable,
  type KindCRD,
  ObjectNameSchema,
  PATTERNS,
  type TypeSchema,
} from "./schema.js";

/** One route. */
export interface IntentRoute {
  /** Destination network, a block of the node. */
  dst: string;
  /** Next hop, the node's VTEP address (VXLAN) or its underlay address (host-gw). */
  gateway?: string;
  /** Output device on the receiving node, such as weft.vxlan; omitted for host-gw. */
  device?: string;
  /** Treat the gateway as directly reachable on the device (the VXLAN case). */
  onlink?: boolean;
  /**
   * CrossSubnet: the direct next hop, the node's underlay address of the route's family. A
   * node on one of spec.underlaySubnets routes via it instead.
   */
  direct?: string;
}

/** An IPv4 or IPv6 address as text. */
const IP: TypeSchema<string> = { minLength: 1, maxLength: 39 };
const MAC: TypeSchema<string> = { maxLength: 17, pattern: PATTERNS.mac };
const DEVICE: TypeSchema<string> = { minLength: 1, maxLength: 15, pattern: PATTERNS.device };

export const IntentRouteSchema: TypeSchema<IntentRoute> = {
  validations: [
    {
      rule: cel`
        !has(self.gateway) || !isCIDR(self.dst) || !isIP(self.gateway) ||
        ip(self.gateway).family() == cidr(self.dst).ip().family()`,
      fieldPath: ".gateway",
      message: "a route's gateway must be of the family of its dst (a route never mixes families)",
    },
    {
      rule: cel`
        !has(self.direct) || !isCIDR(self.dst) || !isIP(self.direct) ||
        ip(self.direct).family() == cidr(self.dst).ip().family()`,
      fieldPath: ".direct",
      message: "a route's direct next hop must be of the family of its dst (a route never mixes families)",
    },
  ],
  fields: {
    dst: {
      minLength: 1,
      maxLength: 43,
      validations: [
        {
          rule: "isCIDR(self) && cidr(self).masked() == cidr(self)",
          message: "dst must be a CIDR without host bits",
        },
      ],
    },
    gateway: {
      maxLength: 39,
      validations: [{ rule: "isIP(self)", message: "gateway must be an IPv4 or IPv6 address" }],
    },
    device: { maxLength: 15, pattern: PATTERNS.device },
    direct: {
      maxLength: 39,
      validations: [{ rule: "isIP(self)", message: "direct must be an IPv4 or IPv6 address" }],
    },
  },
};

/** One neighbor entry. */
export interface IntentNeighbor {
  /** The neighbor's address. */
  ip: string;
  /** The neighbor's MAC address, lower case. */
  mac: string;
  /** Device the entry belongs to, such as weft.vxlan. */
  device: string;
}

export const IntentNeighborSchema: TypeSchema<IntentNeighbor> = {
  fields: {
    ip: { ...IP, validations: [{ rule: "isIP(self)", message: "ip must be an IPv4 or IPv6 address" }] },
    mac: MAC,
    device: DEVICE,
  },
};

/** One FDB entry. */
export interface IntentFDB {
  /** MAC address of the remote VTEP, lower case. */
  mac: string;
  /** Underlay IP of the node the MAC lives behind. */
  dst: string;
  /** VXLAN device the entry belongs to, such as weft.vxlan. */
  device: string;
}

export const IntentFDBSchema: TypeSchema<IntentFDB> = {
  fields: {
    mac: MAC,
    dst: { ...IP, validations: [{ rule: "isIP(self)", message: "dst must be an IPv4 or IPv6 address" }] },
    device: DEVICE,
  },
};

/**
 * The node's VXLAN tunnel endpoint: one device and MAC, an address per family of the node's
 * VXLAN blocks.
 */
export interface VTEP {
  /** IPv4 address of the node's VXLAN device, reserved in one of its IPv4 blocks. */
  ip?: string;
  /** IPv6 address of the node's VXLAN device, reserved in one of its IPv6 blocks. */
  ipv6?: string;
  /** MAC address of the node's VXLAN device (lower case, derived from the node name). */
  mac: string;
  /** VXLAN network identifier, 1-16777215. */
  vni: number;
  /** UDP port of the node's VXLAN device. */
  port: number;
  /**
   * MTU of the node's VXLAN device when a VXLAN pool sets one (the smallest); unset, the
   * underlay's MTU minus 50.
   */
  mtu?: number;
  /**
   * Name of the VXLAN device every node uses for this network. Unset: weft.vxlan. A pool
   * mirrored as Flannel leases uses Flannel's name, flannel.<vni>, so weft-agent and flanneld
   * share one device during a switch-over.
   */
  device?: string;
}

export const VTEPSchema: TypeSchema<VTEP> = {
  validations: [
    {
      rule: "has(self.ip) || has(self.ipv6)",
      reason: "FieldValueRequired",
      message: "spec.vtep needs ip (IPv4), ipv6 or both",
    },
  ],
  fields: {
    ip: {
      ...IP,
      validations: [
        { rule: "isIP(self) && ip(self).family() == 4", message: "spec.vtep.ip must be an IPv4 address" },
      ],
    },
    ipv6: {
      ...IP,
      validations: [
        { rule: "isIP(self) && ip(self).family() == 6", message: "spec.vtep.ipv6 must be an IPv6 address" },
      ],
    },
    mac: MAC,
    vni: { format: "int32", minimum: 1, maximum: 16777215 },
    port: { format: "int32", minimum: 1, maximum: 65535 },
    mtu: { format: "int32", minimum: 576, maximum: 9216 },
    device: DEVICE,
  },
};

/** What the other nodes program into their kernels to reach this node's pods. */
export interface RouteIntentSpec {
  /** Immutable. Name of the node whose pods these entries reach. */
  node: string;
  /**
   * The node's address on the underlay network (the VXLAN FDB destination and the IPv4
   * host-gw next hop; IPv4 when the node has one).
   */
  underlayIP: string;
  /**
   * The node's IPv6 underlay address (dual-stack underlay): the next hop of its IPv6 host-gw
   * and direct routes.
   */
  underlayIPv6?: string;
  /**
   * CrossSubnet only: the node's underlay subnets, one per family, as its agent reports them.
   * A node whose own subnet is one of these uses the routes' direct next hops.
   */
  underlaySubnets?: string[];
  /** How traffic to this node's pods is carried (the encapsulation of the node's pool). */
  encapsulation: Encapsulation;
  /** VXLAN only. The node's VXLAN tunnel endpoint, an address per family. */
  vtep?: VTEP;
  /** Routes to the node's blocks, one per destination. */
  routes: IntentRoute[];
  /** Permanent neighbor (ARP/NDP) entries, the VTEP's address to its MAC. */
  neighbors: IntentNeighbor[];
  /** Forwarding database entries of the VXLAN device, the VTEP's MAC to the node's underlay address. */
  fdb: IntentFDB[];
}

export const RouteIntentSpecSchema: TypeSchema<RouteIntentSpec> = {
  validations: [
    {
      rule: "self.encapsulation != 'VXLAN' || size(self.routes) == 0 || has(self.vtep)",
      fieldPath: ".vtep",
      reason: "FieldValueRequired",
      message: "spec.vtep is required when spec.encapsulation is VXLAN and the node has routes",
    },
  ],
  fields: {
    node: { ...ObjectNameSchema, validations: [immutable("spec.node")] },
    underlayIP: {
      ...IP,
      validations: [
        {
          rule: "isIP(self) && !ip(self).isUnspecified()",
          message: "spec.underlayIP must be a unicast IPv4 or IPv6 address",
        },
      ],
    },
    underlayIPv6: {
      maxLength: 39,
      validations: [
        {
          rule: "isIP(self) && !ip(self).isUnspecified() && ip(self).family() == 6",
          message: "spec.underlayIPv6 must be a unicast IPv6 address",
        },
      ],
    },
    underlaySubnets: {
      maxItems: 2,
      listType: "set",
      items: {
        maxLength: 43,
        validations: [
          {
            rule: "isCIDR(self) && cidr(self).masked() == cidr(self)",
            message: "every underlay subnet must be a CIDR without host bits",
          },
        ],
      },
    },
    routes: { default: [], maxItems: 4096, listType: "map", listMapKeys: ["dst"] },
    neighbors: { default: [], maxItems: 64, listType: "map", listMapKeys: ["ip", "device"] },
    fdb: { default: [], maxItems: 64, listType: "map", listMapKeys: ["mac", "dst", "device"] },
  },
};

/** Observed state of the intent. */
export interface RouteIntentStatus {
  /** The metadata.generation of the spec this status describes. */
  observedGeneration?: number;
  /** Conditions of the intent. */
  conditions?: Condition[];
}

export const RouteIntentStatusSchema: TypeSchema<RouteIntentStatus> = {
  fields: { observedGeneration: CountSchema, conditions: ConditionsSchema },
};

/**
 * RouteIntent says how every other node reaches one node's pods: the routes to its blocks,
 * and for VXLAN the neighbor (ARP) and FDB entry of its VTEP. There is one per node, named
 * after the node and written by weft-controller; every weft-agent applies the others'.
 */
export type RouteIntent = WeftObject<"RouteIntent", RouteIntentSpec, RouteIntentStatus>;

export const RouteIntentCRD: KindCRD = {
  shortNames: ["ri"],
  printerColumns: [
    {
      name: "Node",
      type: "string",
      jsonPath: ".spec.node",
      description: "The node whose pods these routes reach.",
    },
    {
      name: "UnderlayIP",
      type: "string",
      jsonPath: ".spec.underlayIP",
      description: "The node's address on the underlay network.",
    },
    {
      name: "Encapsulation",
      type: "string",
      jsonPath: ".spec.encapsulation",
      description: "How the other nodes carry traffic to it.",
    },
    {
      name: "VTEP",
      type: "string",
      jsonPath: ".spec.vtep.ip",
      description: "Address of the node's VXLAN endpoint.",
    },
    {
      name: "VTEP-IPv6",
      type: "string",
      jsonPath: ".spec.vtep.ipv6",
      priority: 1,
      description: "IPv6 address of the node's VXLAN endpoint.",
    },
    {
      name: "MAC",
      type: "string",
      jsonPath: ".spec.vtep.mac",
      priority: 1,
      description: "MAC address of the node's VXLAN endpoint.",
    },
    AGE_COLUMN,
  ],
  validations: [
    {
      rule: "self.metadata.name == self.spec.node",
      message: "metadata.name must equal spec.node (one RouteIntent per node, named after it)",
    },
  ],
};
