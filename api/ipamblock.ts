import type { WeftObject } from "./meta.js";

/** One used address of a block, keyed by its ordinal (offset from the block's first address). */
export interface BlockAllocation {
  /** Offset of the address inside the block. */
  ordinal: number;
  /** Who holds it: a pod handle `<sandbox-id>.<interface>`, or a reserved handle such as `vtep.<node>`. */
  handle: string;
  /** The pod, when a pod holds it. */
  namespace?: string;
  pod?: string;
  /** The block's sequence number when this address was handed out; guards against stale releases. */
  sequence: number;
}

export interface IPAMBlockSpec {
  cidr: string;
  /** Name of the IPPool this block was cut from. */
  pool: string;
  /** Node that owns the block; empty once released. */
  affinity: string;
  allocations: BlockAllocation[];
  /** Increases with every assignment; allocations remember the value they were made at. */
  sequence: number;
}

export type IPAMBlock = WeftObject<"IPAMBlock", IPAMBlockSpec>;

/** Object name of a block: its CIDR with dots, colons and the slash turned into dashes (`10-244-3-64-26`). */
export function blockName(cidr: string): string {
  return cidr.toLowerCase().replace(/[.:/]/g, "-").replace(/-+/g, "-").replace(/^-|-$/g, "");
}
