import type { Condition, LabelSelector, WeftObject } from "./meta.js";

export type Allocation = "Blocks" | "NodeSubnet";
export type Encapsulation = "VXLAN" | "HostGW" | "BGP" | "IPIP";

export interface IPPoolSpec {
  /** Immutable. IPv4 or IPv6 network without host bits. */
  cidr: string;
  /**
   * Immutable. Default 26 (IPv4) / 122 (IPv6); 20–32 / 116–128 and not shorter than the pool prefix.
   * The CRD cannot default it (the default depends on the family), so an unset value may later be
   * filled in with exactly the default and nothing else; use effectiveBlockSize() to read it.
   */
  blockSize?: number;
  /** Default Blocks. */
  allocation?: Allocation;
  /** Default VXLAN. */
  encapsulation?: Encapsulation;
  /** VNI default 4096, port default 4789 (defaulted by the CRD when vxlan is set); mtu unset = underlay - 50. */
  vxlan?: { vni?: number; port?: number; mtu?: number };
  natOutgoing?: boolean;
  nodeSelector?: LabelSelector;
  disabled?: boolean;
  /** Default true: a node never takes addresses from another node's block. */
  strictAffinity?: boolean;
  /** 0 or unset: no limit. Must be 1 (or unset) with allocation NodeSubnet. */
  maxBlocksPerNode?: number;
}

export interface IPPoolStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  /** Counts as decimal strings where IPv6 can exceed 2^53. */
  blocks?: { used: number; total: string };
  addresses?: { used: number; free: string };
}

export type IPPool = WeftObject<"IPPool", IPPoolSpec, IPPoolStatus>;

export const POOL_DEFAULTS = {
  blockSizeV4: 26,
  blockSizeV6: 122,
  allocation: "Blocks" as Allocation,
  encapsulation: "VXLAN" as Encapsulation,
  vni: 4096,
  vxlanPort: 4789,
  strictAffinity: true,
};

/** The pool's block size, with the family default the CRD cannot apply by itself. */
export function effectiveBlockSize(spec: Pick<IPPoolSpec, "cidr" | "blockSize">): number {
  if (spec.blockSize !== undefined) return spec.blockSize;
  return spec.cidr.includes(":") ? POOL_DEFAULTS.blockSizeV6 : POOL_DEFAULTS.blockSizeV4;
}
