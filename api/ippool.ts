import { familyOfValid } from "../net/index.js";
import {
  type Condition,
  ConditionsSchema,
  CountSchema,
  type LabelSelector,
  type WeftObject,
} from "./meta.js";
import { AGE_COLUMN, cel, immutable, type KindCRD, PATTERNS, type TypeSchema } from "./schema.js";

export type Allocation = "Blocks" | "NodeSubnet";
export type Encapsulation = "VXLAN" | "HostGW" | "BGP" | "IPIP";

/** Desired state of the pool. */
export interface IPPoolSpec {
  /**
   * Immutable. The pool's range, an IPv4 or IPv6 network without host bits, such as
   * 10.244.0.0/16 or fd00:10:244::/56. It must not overlap the loopback, link-local or
   * multicast ranges.
   */
  cidr: string;
  /**
   * Immutable. Prefix length of the blocks nodes claim from this pool: 20-32 for IPv4,
   * 116-128 for IPv6, and not shorter than the pool's own prefix. When unset the
   * effective value is 26 for IPv4 (64 addresses) and 122 for IPv6; the controller may
   * fill that default in, nothing else can change it.
   * @remarks The CRD cannot default it (the default depends on the family); read it with
   * effectiveBlockSize().
   */
  blockSize?: number;
  /**
   * How nodes get blocks. Blocks (Calico style): a node claims a block at join and more
   * on demand. NodeSubnet (Flannel style): exactly one block per node, claimed at join.
   */
  allocation?: Allocation;
  /**
   * How pod traffic crosses between nodes. VXLAN: an overlay through the weft.vxlan
   * device. HostGW: plain routes via the other node's address (nodes share an L2
   * segment). BGP: routes announced with BIRD, no encapsulation. IPIP: IP-in-IP, IPv4
   * pools only.
   */
  encapsulation?: Encapsulation;
  /** VXLAN settings, used when encapsulation is VXLAN. */
  vxlan?: {
    /** VXLAN network identifier, 1-16777215 (default 4096; Flannel uses 1). */
    vni?: number;
    /** UDP destination port of the VXLAN device (default 4789; Flannel uses 8472). */
    port?: number;
    /**
     * MTU of the VXLAN device. Unset: the underlay MTU minus 50. At least 1280 for an
     * IPv6 pool.
     */
    mtu?: number;
  };
  /**
   * Masquerade traffic from pods of this pool to destinations outside every pool to the
   * node's address (default true). Each agent does it in one nftables table of its own.
   */
  natOutgoing?: boolean;
  /**
   * VXLAN and IPIP pools: nodes on the same underlay subnet route to each other directly,
   * and only traffic between subnets is encapsulated (default false).
   */
  crossSubnet?: boolean;
  /** Label selector of the nodes that take addresses from this pool. Unset or empty: all nodes. */
  nodeSelector?: LabelSelector;
  /** A disabled pool gives out no new blocks or addresses; existing ones stay (default false). */
  disabled?: boolean;
  /**
   * When true (the default) a node never takes addresses from another node's block, even
   * when its own blocks are full and the pool has no free block left.
   */
  strictAffinity?: boolean;
  /**
   * Most blocks one node may claim from this pool; 0 or unset means no limit. Must be 1
   * (or unset) with allocation NodeSubnet.
   */
  maxBlocksPerNode?: number;
  /** When the pool warns that it runs out (the NearlyExhausted condition and an Event). */
  exhaustionWarning?: ExhaustionWarning;
}

/** When a pool counts as nearly exhausted. */
export interface ExhaustionWarning {
  /**
   * Percent of the pool's blocks or of its addresses in use from which it warns, 1-100
   * (default 90).
   */
  usedPercent?: number;
  /**
   * Warn when, at the rate nodes claimed blocks over the last hour, the free blocks last fewer
   * hours than this (default 24; 0 turns the forecast off).
   */
  forecastHours?: number;
}

/** Observed state of the pool, written by weft-controller. */
export interface IPPoolStatus {
  /** The metadata.generation of the spec this status describes. */
  observedGeneration?: number;
  /**
   * Ready, Overlapping, Exhausted and NearlyExhausted, each with the generation it was observed
   * at.
   */
  conditions?: Condition[];
  /** The effective block size, spec.blockSize or the family default (26 or 122). */
  blockSize?: number;
  /** How many blocks of the pool nodes hold, and how many it has. */
  blocks?: {
    /** Blocks claimed by nodes. */
    used: number;
    /** Blocks the pool has, in decimal (a string because IPv6 counts exceed 2^53). */
    total: string;
    /** Blocks no node holds yet, in decimal. */
    free?: string;
  };
  /** Addresses in use and still free. */
  addresses?: {
    /** Addresses assigned to pods or reserved (VTEPs). */
    used: number;
    /** Addresses still free, in decimal (a string because IPv6 counts exceed 2^53). */
    free: string;
  };
  /** Claims over the last hour: what the exhaustion forecast extrapolates. */
  claims?: {
    /** Blocks claimed by nodes in the last hour (from the blocks' creation times). */
    blocksLastHour: number;
    /**
     * Addresses handed out in the last hour, as far as weft-controller saw them (it counts
     * from its start, so less than an hour after a restart).
     */
    addressesLastHour: number;
  };
  /**
   * When the last free block will be claimed at the rate of the last hour (to the minute); unset
   * when no block was claimed in the last hour.
   */
  blocksExhaustedAt?: string;
}

/**
 * IPPool is a range of pod addresses. Nodes claim blocks of it (Calico style, allocation
 * Blocks) or exactly one block each (Flannel style, allocation NodeSubnet), and pods get
 * their addresses from their node's blocks.
 */
export type IPPool = WeftObject<"IPPool", IPPoolSpec, IPPoolStatus>;

export const POOL_DEFAULTS = {
  blockSizeV4: 26,
  blockSizeV6: 122,
  allocation: "Blocks" as Allocation,
  encapsulation: "VXLAN" as Encapsulation,
  vni: 4096,
  vxlanPort: 4789,
  strictAffinity: true,
  natOutgoing: true,
  crossSubnet: false,
  /** exhaustionWarning.usedPercent */
  warnUsedPercent: 90,
  /** exhaustionWarning.forecastHours */
  warnForecastHours: 24,
};

/** A blockSize CEL expression that falls back to the family default when blockSize is unset. */
const FAMILY_DEFAULT = `(cidr(self.cidr).ip().family() == 4 ? ${POOL_DEFAULTS.blockSizeV4} : ${POOL_DEFAULTS.blockSizeV6})`;

export const IPPoolSpecSchema: TypeSchema<IPPoolSpec> = {
  validations: [
    {
      rule: cel`
        !has(self.blockSize) || !isCIDR(self.cidr) ||
        (cidr(self.cidr).ip().family() == 4 ? self.blockSize >= 20 && self.blockSize <= 32 :
        self.blockSize >= 116 && self.blockSize <= 128)`,
      fieldPath: ".blockSize",
      message: "spec.blockSize must be 20-32 for an IPv4 pool and 116-128 for an IPv6 pool",
    },
    {
      rule: cel`
        !isCIDR(self.cidr) ||
        (has(self.blockSize) ? self.blockSize : ${FAMILY_DEFAULT})
        >= cidr(self.cidr).prefixLength()`,
      fieldPath: ".blockSize",
      message:
        "spec.blockSize (default 26 for IPv4, 122 for IPv6) must not be shorter than the prefix " +
        "of spec.cidr: a block cannot be larger than its pool",
    },
    {
      rule: cel`
        has(oldSelf.blockSize) ? (has(self.blockSize) && self.blockSize == oldSelf.blockSize) :
        (!has(self.blockSize) || !isCIDR(self.cidr) ||
        self.blockSize == ${FAMILY_DEFAULT})`,
      fieldPath: ".blockSize",
      reason: "FieldValueForbidden",
      message:
        "spec.blockSize is immutable (it may only be filled in with its default, 26 for IPv4 " +
        "or 122 for IPv6)",
    },
    {
      rule: cel`
        !has(self.encapsulation) || self.encapsulation != 'IPIP' || !isCIDR(self.cidr) ||
        cidr(self.cidr).ip().family() == 4`,
      fieldPath: ".encapsulation",
      message: "spec.encapsulation IPIP carries IPv4 only; use VXLAN, HostGW or BGP for an IPv6 pool",
    },
    {
      rule: cel`
        !has(self.vxlan) || !has(self.vxlan.mtu) || !isCIDR(self.cidr) ||
        cidr(self.cidr).ip().family() == 4 || self.vxlan.mtu >= 1280`,
      fieldPath: ".vxlan.mtu",
      message: "spec.vxlan.mtu must be at least 1280 for an IPv6 pool",
    },
    {
      rule: cel`
        !has(self.crossSubnet) || !self.crossSubnet || !has(self.encapsulation) ||
        self.encapsulation == 'VXLAN' || self.encapsulation == 'IPIP'`,
      fieldPath: ".crossSubnet",
      message: "spec.crossSubnet applies to VXLAN and IPIP pools only (HostGW and BGP never encapsulate)",
    },
    {
      rule: cel`
        !has(self.allocation) || self.allocation != 'NodeSubnet' ||
        !has(self.maxBlocksPerNode) || self.maxBlocksPerNode == 1`,
      fieldPath: ".maxBlocksPerNode",
      message: "spec.maxBlocksPerNode must be 1 (or unset) when spec.allocation is NodeSubnet",
    },
  ],
  fields: {
    cidr: {
      minLength: 1,
      maxLength: 43,
      validations: [
        {
          rule: "isCIDR(self)",
          message: "spec.cidr must be a CIDR such as 10.244.0.0/16 or fd00:10:244::/56",
        },
        {
          rule: "!isCIDR(self) || cidr(self).masked() == cidr(self)",
          message: "spec.cidr has host bits set; use the network address (10.244.0.0/16, not 10.244.1.0/16)",
        },
        {
          rule: cel`
            !isCIDR(self) || !(cidr('169.254.0.0/16').containsCIDR(self) ||
            cidr(self).containsIP('169.254.0.0') || cidr('fe80::/10').containsCIDR(self) ||
            cidr(self).containsIP('fe80::'))`,
          message: "spec.cidr overlaps the link-local range 169.254.0.0/16 or fe80::/10",
        },
        {
          rule: cel`
            !isCIDR(self) || !(cidr('127.0.0.0/8').containsCIDR(self) ||
            cidr(self).containsIP('127.0.0.0') || cidr(self).containsIP('::1'))`,
          message: "spec.cidr overlaps the loopback range 127.0.0.0/8 or ::1",
        },
        {
          rule: cel`
            !isCIDR(self) || !(cidr('224.0.0.0/4').containsCIDR(self) ||
            cidr(self).containsIP('224.0.0.0') || cidr('ff00::/8').containsCIDR(self) ||
            cidr(self).containsIP('ff00::'))`,
          message: "spec.cidr overlaps the multicast range 224.0.0.0/4 or ff00::/8",
        },
        immutable("spec.cidr", "create a new pool and disable this one to migrate"),
      ],
    },
    blockSize: { format: "int32", minimum: 20, maximum: 128 },
    allocation: { default: POOL_DEFAULTS.allocation },
    encapsulation: { default: POOL_DEFAULTS.encapsulation },
    vxlan: {
      fields: {
        vni: { format: "int32", minimum: 1, maximum: 16777215, default: POOL_DEFAULTS.vni },
        port: { format: "int32", minimum: 1, maximum: 65535, default: POOL_DEFAULTS.vxlanPort },
        mtu: { format: "int32", minimum: 576, maximum: 9216 },
      },
    },
    natOutgoing: { default: POOL_DEFAULTS.natOutgoing },
    crossSubnet: { default: POOL_DEFAULTS.crossSubnet },
    strictAffinity: { default: POOL_DEFAULTS.strictAffinity },
    maxBlocksPerNode: { format: "int32", minimum: 0, maximum: 1048576 },
    exhaustionWarning: {
      fields: {
        usedPercent: { format: "int32", minimum: 1, maximum: 100, default: POOL_DEFAULTS.warnUsedPercent },
        forecastHours: {
          format: "int32",
          minimum: 0,
          maximum: 8760,
          default: POOL_DEFAULTS.warnForecastHours,
        },
      },
    },
  },
};

/** A count too large for a JSON number (IPv6), in decimal. */
const DECIMAL: TypeSchema<string> = { maxLength: 40, pattern: PATTERNS.decimal };

export const IPPoolStatusSchema: TypeSchema<IPPoolStatus> = {
  fields: {
    observedGeneration: CountSchema,
    conditions: ConditionsSchema,
    blockSize: { format: "int32", minimum: 20, maximum: 128 },
    blocks: { fields: { used: CountSchema, total: DECIMAL, free: DECIMAL } },
    addresses: { fields: { used: CountSchema, free: DECIMAL } },
    claims: { fields: { blocksLastHour: CountSchema, addressesLastHour: CountSchema } },
    blocksExhaustedAt: { format: "date-time" },
  },
};

export const IPPoolCRD: KindCRD = {
  shortNames: ["ipp"],
  printerColumns: [
    { name: "CIDR", type: "string", jsonPath: ".spec.cidr", description: "Pod address range of the pool." },
    {
      name: "BlockSize",
      type: "integer",
      jsonPath: ".status.blockSize",
      description:
        "Prefix length of the blocks nodes claim (spec.blockSize or its family default, 26 or 122).",
    },
    {
      name: "Encapsulation",
      type: "string",
      jsonPath: ".spec.encapsulation",
      description: "How traffic between nodes is carried.",
    },
    {
      name: "Allocation",
      type: "string",
      jsonPath: ".spec.allocation",
      priority: 1,
      description: "Blocks (claimed on demand) or NodeSubnet (one block per node).",
    },
    { name: "Used", type: "integer", jsonPath: ".status.addresses.used", description: "Addresses in use." },
    {
      name: "Free",
      type: "string",
      jsonPath: ".status.addresses.free",
      description: "Addresses still free.",
    },
    {
      name: "Ready",
      type: "string",
      jsonPath: '.status.conditions[?(@.type=="Ready")].status',
      description: "Whether the pool hands out addresses.",
    },
    {
      name: "Disabled",
      type: "boolean",
      jsonPath: ".spec.disabled",
      priority: 1,
      description: "A disabled pool gives out no new addresses.",
    },
    AGE_COLUMN,
  ],
};

/** The pool's block size, with the family default the CRD cannot apply by itself. */
export function effectiveBlockSize(spec: Pick<IPPoolSpec, "cidr" | "blockSize">): number {
  if (spec.blockSize !== undefined) return spec.blockSize;
  return familyOfValid(spec.cidr) === 6 ? POOL_DEFAULTS.blockSizeV6 : POOL_DEFAULTS.blockSizeV4;
}

/** A pool spec with every default applied: what the spec means, whatever the writer left out. */
export interface DefaultedIPPoolSpec extends IPPoolSpec {
  /** As effectiveBlockSize() gives it. */
  blockSize: number;
  /** POOL_DEFAULTS.allocation when unset. */
  allocation: Allocation;
  /** POOL_DEFAULTS.encapsulation when unset. */
  encapsulation: Encapsulation;
  /** VNI and port always set (POOL_DEFAULTS), also for pools that are not VXLAN; mtu as given. */
  vxlan: { vni: number; port: number; mtu?: number };
  /** POOL_DEFAULTS.strictAffinity when unset. */
  strictAffinity: boolean;
  /** False when unset. */
  disabled: boolean;
}

/**
 * The pool with its defaults applied, for code that reads what a pool means. The apiserver applies
 * most of them itself, but not blockSize (it depends on the family), not to objects written before
 * a default existed, and not in the etcd datastore, so readers apply them here, once.
 */
export function withPoolDefaults<P extends { spec: IPPoolSpec }>(pool: P): P & { spec: DefaultedIPPoolSpec } {
  const s = pool.spec;
  return {
    ...pool,
    spec: {
      ...s,
      blockSize: effectiveBlockSize(s),
      allocation: s.allocation ?? POOL_DEFAULTS.allocation,
      encapsulation: s.encapsulation ?? POOL_DEFAULTS.encapsulation,
      vxlan: {
        ...s.vxlan,
        vni: s.vxlan?.vni ?? POOL_DEFAULTS.vni,
        port: s.vxlan?.port ?? POOL_DEFAULTS.vxlanPort,
      },
      strictAffinity: s.strictAffinity ?? POOL_DEFAULTS.strictAffinity,
      disabled: s.disabled ?? false,
    },
  };
}
