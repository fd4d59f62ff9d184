import type { ControllerPart } from "../context.js";
import { BlockStatusReconciler } from "./blockstatus.js";
import { PodGC } from "./gc.js";
import { NodeReconciler } from "./node.js";
import { PoolStatusReconciler } from "./poolstatus.js";
import { IpamShared } from "./shared.js";

export { BlockStatusReconciler, desiredBlockStatus } from "./blockstatus.js";
export { type GCOptions, PodGC } from "./gc.js";
export { NodeReconciler } from "./node.js";
export { desiredPoolStatus, PoolStatusReconciler } from "./poolstatus.js";
export { IpamShared } from "./shared.js";

export interface IpamPartsOptions {
  /** An address is released only if seen leaked twice this far apart (default 60 s). */
  gcGraceMs?: number;
  /** Time between GC scans (default gcGraceMs / 3). */
  gcIntervalMs?: number;
  /** Only pools whose name passes (and their blocks) are handled: several controllers over disjoint pools, tests. */
  poolFilter?: (name: string) => boolean;
  /** Pool and block status writes are coalesced to at most one per object this often (default 1000 ms). */
  statusDelayMs?: number;
}

/** The IPAM concerns of weft-controller: node join/leave, pod address GC, pool and block status, drain. */
export function ipamControllerParts(opts: IpamPartsOptions = {}): ControllerPart[] {
  const shared = new IpamShared(opts.poolFilter);
  const gc: ConstructorParameters<typeof PodGC>[1] = { poolFilter: opts.poolFilter };
  if (opts.gcGraceMs !== undefined) gc.graceMs = opts.gcGraceMs;
  if (opts.gcIntervalMs !== undefined) gc.intervalMs = opts.gcIntervalMs;
  return [
    new NodeReconciler(shared, opts.poolFilter),
    new PoolStatusReconciler(shared, opts.poolFilter, opts.statusDelayMs),
    new BlockStatusReconciler(shared, opts.poolFilter, opts.statusDelayMs),
    new PodGC(shared, gc),
  ];
}
