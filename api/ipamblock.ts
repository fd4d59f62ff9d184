import type { Condition, WeftObject } from "./meta.js";

/** One used address of a block, keyed by its ordinal (offset from the block's first address). */
export interface BlockAllocation {
  /** Offset of the address inside the block. */
  ordinal: number;
  /** Who holds it: a pod handle `<sandbox-id>.<interface>`, or a reserved handle such as `vtep.<node>`. */
  handle: string;
  /** Namespace of the pod, when a pod holds it. */
  namespace?: string;
  /** Name of the pod, when a pod holds it. */
  pod?: string;
  /** The block's sequence number when this address was handed out; guards against stale releases. */
  sequence: number;
}

export interface IPAMBlockSpec {
  /** Immutable. The block's network; its prefix is the pool's blockSize. */
  cidr: string;
  /** Immutable. Name of the IPPool this block was cut from. */
  pool: string;
  /** Node that owns the block; empty once released. */
  affinity: string;
  /** Used addresses, unique by ordinal. */
  allocations: BlockAllocation[];
  /** Increases with every assignment; allocations remember the value they were made at. */
  sequence: number;
}

/** The block itself is its state; the status subresource only carries conditions (e.g. from GC). */
export interface IPAMBlockStatus {
  observedGeneration?: number;
  conditions?: Condition[];
}

export type IPAMBlock = WeftObject<"IPAMBlock", IPAMBlockSpec, IPAMBlockStatus>;

/** Object name of a block: its CIDR with dots, colons and the slash turned into dashes (`10-244-3-64-26`). */
export function blockName(cidr: string): string {
  return cidr.toLowerCase().replace(/[.:/]/g, "-").replace(/-+/g, "-").replace(/^-|-$/g, "");
}
