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

/** One used address. */
export interface BlockAllocation {
  /** Offset of the address from the first address of the block. */
  ordinal: number;
  /**
   * Who holds the address: a pod handle <sandbox-id>.<interface>, or a reserved
   * handle such as vtep.<node>. Releases name the handle.
   */
  handle: string;
  /** Namespace of the pod holding the address, when a pod holds it. */
  namespace?: string;
  /** Name of the pod holding the address, when a pod holds it. */
  pod?: string;
  /**
   * The block's sequence number when the address was handed out; a release that
   * names an older sequence is stale and frees nothing.
   */
  sequence: number;
  /**
   * Node of the pod holding the address when that is not the block's node: an address borrowed
   * from another node's block (pools with strictAffinity false). Other nodes route it to this
   * node; unset for the block's own addresses.
   */
  node?: string;
}

export const BlockAllocationSchema: TypeSchema<BlockAllocation> = {
  fields: {
    ordinal: { format: "int32", minimum: 0, maximum: 4095 },
    handle: { minLength: 1, maxLength: 256, pattern: "^[A-Za-z0-9][-A-Za-z0-9_.:/@]*$" },
    namespace: { maxLength: 63, pattern: PATTERNS.dnsLabel },
    pod: { maxLength: 253, pattern: PATTERNS.dnsSubdomain },
    sequence: CountSchema,
    node: { maxLength: 253, pattern: PATTERNS.dnsSubdomain },
  },
};

/** The block, its owner and its assignments. */
export interface IPAMBlockSpec {
  /**
   * Immutable. The block's addresses, a network without host bits whose prefix is the
   * pool's blockSize (20-32 for IPv4, 116-128 for IPv6).
   */
  cidr: string;
  /** Immutable. Name of the IPPool this block was cut from. */
  pool: string;
  /**
   * Name of the node that owns the block; empty once the block is released (and before
   * another node claims it).
   */
  affinity: string;
  /** The used addresses of the block, one entry per address, unique by ordinal. */
  allocations: BlockAllocation[];
  /** Increases with every assignment; allocations remember the value they were made at. */
  sequence: number;
}

export const IPAMBlockSpecSchema: TypeSchema<IPAMBlockSpec> = {
  validations: [
    {
      rule: "self.allocations.all(a, a.sequence <= self.sequence)",
      fieldPath: ".allocations",
      message: "spec.allocations[].sequence must not exceed spec.sequence",
    },
    {
      // The size of a block, 2^(max prefix - prefix), as a table: CEL has no shift or power.
      rule: cel`
        !isCIDR(self.cidr) || cidr(self.cidr).prefixLength() < (cidr(self.cidr).ip().family() == 4 ? 20 : 116) ||
        self.allocations.all(a, a.ordinal < [4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1][cidr(self.cidr).prefixLength() - (cidr(self.cidr).ip().family() == 4 ? 20 : 116)])`,
      fieldPath: ".allocations",
      message: "spec.allocations[].ordinal must lie inside the block (below its number of addresses)",
    },
  ],
  fields: {
    cidr: {
      minLength: 1,
      maxLength: 43,
      validations: [
        { rule: "isCIDR(self)", message: "spec.cidr must be a CIDR such as 10.244.3.64/26" },
        {
          rule: "!isCIDR(self) || cidr(self).masked() == cidr(self)",
          message: "spec.cidr has host bits set; use the network address of the block",
        },
        {
          rule: cel`
            !isCIDR(self) || (cidr(self).ip().family() == 4 ? cidr(self).prefixLength() >= 20 :
            cidr(self).prefixLength() >= 116)`,
          message: "spec.cidr must be a /20-/32 (IPv4) or /116-/128 (IPv6) block",
        },
        immutable("spec.cidr"),
      ],
    },
    pool: { ...ObjectNameSchema, validations: [immutable("spec.pool")] },
    affinity: {
      maxLength: 253,
      pattern: String.raw`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$`,
    },
    allocations: { maxItems: 4096, listType: "map", listMapKeys: ["ordinal"] },
    sequence: CountSchema,
  },
};

/** Observed state of the block (the block itself is its state; this carries conditions). */
export interface IPAMBlockStatus {
  /** The metadata.generation of the spec this status describes. */
  observedGeneration?: number;
  /** Conditions of the block, such as Leaked addresses found by garbage collection. */
  conditions?: Condition[];
}

export const IPAMBlockStatusSchema: TypeSchema<IPAMBlockStatus> = {
  fields: { observedGeneration: CountSchema, conditions: ConditionsSchema },
};

/**
 * IPAMBlock is a block of an IPPool claimed by one node, with the addresses assigned from
 * it. Creating the block with its affinity is the claim (AlreadyExists means another node
 * won), and every assignment or release is one compare-and-swap update of the block. The
 * name is derived from the CIDR: 10.244.3.64/26 is named 10-244-3-64-26.
 */
export type IPAMBlock = WeftObject<"IPAMBlock", IPAMBlockSpec, IPAMBlockStatus>;

/** blockName() in CEL: the CIDR lower-cased, with dots, colons and the slash turned into single dashes. */
const BLOCK_NAME =
  "self.spec.cidr.lowerAscii().replace('.', '-').replace(':', '-').replace('/', '-').replace('--', '-').replace('--', '-')";

export const IPAMBlockCRD: KindCRD = {
  shortNames: ["ipb"],
  printerColumns: [
    { name: "CIDR", type: "string", jsonPath: ".spec.cidr", description: "Addresses of the block." },
    { name: "Pool", type: "string", jsonPath: ".spec.pool", description: "IPPool the block was cut from." },
    {
      name: "Node",
      type: "string",
      jsonPath: ".spec.affinity",
      description: "Node that owns the block; empty once released.",
    },
    {
      name: "Sequence",
      type: "integer",
      jsonPath: ".spec.sequence",
      priority: 1,
      description: "Number of assignments made from the block so far.",
    },
    AGE_COLUMN,
  ],
  // Each agent lists and watches its own node's blocks only (fieldSelector=spec.affinity=<node>).
  selectableFields: [".spec.affinity"],
  validations: [
    {
      rule: cel`
        self.spec.cidr.startsWith(':') ?
        self.metadata.name == ${BLOCK_NAME}.substring(1) :
        self.metadata.name == ${BLOCK_NAME}`,
      message:
        "metadata.name must be derived from spec.cidr (10.244.3.64/26 -> 10-244-3-64-26, " +
        "fd00:10:244::40/122 -> fd00-10-244-40-122), so that two claims of one block collide",
    },
  ],
};

/** The field selection of a node's own blocks (what an agent lists and watches). */
export function ownBlocks(node: string): Readonly<Record<string, string>> {
  return { "spec.affinity": node };
}

/** Object name of a block: its CIDR with dots, colons and the slash turned into dashes (`10-244-3-64-26`). */
export function blockName(cidr: string): string {
  return cidr.toLowerCase().replace(/[.:/]/g, "-").replace(/-+/g, "-").replace(/^-|-$/g, "");
}
