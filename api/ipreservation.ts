import { type Condition, ConditionsSchema, CountSchema, type WeftObject } from "./meta.js";
import { AGE_COLUMN, type KindCRD, PATTERNS, type TypeSchema } from "./schema.js";

/** Addresses the IPAM never hands out on its own. */
export interface IPReservationSpec {
  /**
   * Addresses (10.244.1.5, fd00:10:244::5) and networks (10.244.1.0/28) inside IPPools that are
   * never given to a pod automatically. A pod may still ask for one of them by name with the
   * weft.dev/ip-addresses annotation: keeping an address out of automatic assignment is how it
   * stays free for the pod that names it.
   */
  reservedCIDRs: string[];
}

/** One reserved address that something held when the reservation was looked at. */
export interface ReservedAddressInUse {
  /** The address. */
  ip: string;
  /** The handle that holds it: <sandbox-id>.<interface> for a pod, vtep.<node> for a VTEP. */
  handle: string;
  /** Namespace of the pod holding it, when a pod does. */
  namespace?: string;
  /** Name of the pod holding it, when a pod does. */
  pod?: string;
  /** Node of the block the address lives in. */
  node?: string;
}

/** What weft-controller found about the reservation. */
export interface IPReservationStatus {
  /** The metadata.generation of the spec this status describes. */
  observedGeneration?: number;
  /**
   * Ready (every entry lies inside an IPPool) and InUse (reserved addresses that pods or nodes
   * still hold; they keep them, nothing is taken away).
   */
  conditions?: Condition[];
  /** How many addresses of the pools the reservation covers, in decimal (IPv6 counts exceed 2^53). */
  reservedAddresses?: string;
  /** Reserved addresses that are held, at most the first 100 (the InUse condition gives the count). */
  inUse?: ReservedAddressInUse[];
}

/**
 * IPReservation keeps addresses of the IPPools out of automatic assignment: cluster-scoped, any
 * number of them, each a list of addresses and networks. Addresses held before a reservation was
 * made stay with their holders and are listed in its status.
 */
export type IPReservation = WeftObject<"IPReservation", IPReservationSpec, IPReservationStatus>;

export const IPReservationSpecSchema: TypeSchema<IPReservationSpec> = {
  fields: {
    reservedCIDRs: {
      maxItems: 1024,
      listType: "set",
      validations: [
        {
          rule: "size(self) > 0",
          message: "spec.reservedCIDRs must name at least one address or network",
        },
      ],
      items: {
        minLength: 1,
        maxLength: 43,
        validations: [
          {
            rule: "isIP(self) || isCIDR(self)",
            message:
              "spec.reservedCIDRs entries must be an address (10.244.1.5, fd00::5) or a network " +
              "(10.244.1.0/28), not a range or a name",
          },
          {
            rule: "!isCIDR(self) || cidr(self).masked() == cidr(self)",
            message:
              "spec.reservedCIDRs entry has host bits set; use the network address (10.244.1.0/28, not 10.244.1.3/28)",
          },
        ],
      },
    },
  },
};

export const IPReservationStatusSchema: TypeSchema<IPReservationStatus> = {
  fields: {
    observedGeneration: CountSchema,
    conditions: ConditionsSchema,
    reservedAddresses: { maxLength: 40, pattern: PATTERNS.decimal },
    inUse: { maxItems: 100, listType: "atomic" },
  },
};

export const ReservedAddressInUseSchema: TypeSchema<ReservedAddressInUse> = {
  fields: {
    ip: { maxLength: 39 },
    handle: { maxLength: 256 },
    namespace: { maxLength: 63 },
    pod: { maxLength: 253 },
    node: { maxLength: 253 },
  },
};

export const IPReservationCRD: KindCRD = {
  shortNames: ["ipr"],
  printerColumns: [
    {
      name: "Reserved",
      type: "string",
      jsonPath: ".status.reservedAddresses",
      description: "Addresses of the pools the reservation covers.",
    },
    {
      name: "Ready",
      type: "string",
      jsonPath: '.status.conditions[?(@.type=="Ready")].status',
      description: "Whether every entry lies inside an IPPool.",
    },
    {
      name: "InUse",
      type: "string",
      jsonPath: '.status.conditions[?(@.type=="InUse")].status',
      description: "Whether reserved addresses are still held.",
    },
    AGE_COLUMN,
  ],
};
