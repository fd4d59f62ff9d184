import type { Condition, LabelSelector, WeftObject } from "./meta.js";

export type Allocation = "Blocks" | "NodeSubnet";
export type Encapsulation = "VXLAN" | "HostGW" | "BGP" | "IPIP";

export interface IPPoolSpec {
  /** Immutable. IPv4 or IPv6 network without host bits. */
  cidr: string;
  /** Immutable. Default 26 (IPv4) / 122 (IPv6); 20–32 / 116–128 and not shorter than the pool prefix. */
  blockSize?: number;
  /** Default Blocks. */
  allocation?: Allocation;
  /** Default VXLAN. */
  encapsulation?: Encapsulation;
  vxlan?: { vni?: number; port?: number; mtu?: number };
  natOutgoing?: boolean;
  nodeSelector?: LabelSelector;
  disabled?: boolean;
  /** Default true: a node never takes addresses from another node's block. */
  strictAffinity?: boolean;
  maxBlocksPerNode?: number;
}

export interface IPPoolStatus {
  observedGeneration?: number;
  conditions?: Condition[];
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
