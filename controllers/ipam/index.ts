import { Assigner } from "../../ipam/client/index.js";
import type { Runnable } from "../../runtime/index.js";
import type { ControllerContext } from "../context.js";
import { blockStatusController } from "./blockstatus.js";
import { type GCOptions, PodGC } from "./gc.js";
import { ipamMetrics } from "./metrics.js";
import { nodeController } from "./node.js";
import { poolStatusController } from "./poolstatus.js";
import { reservationStatusController } from "./reservation.js";

export { BlockStatusReconciler, blockStatusController, desiredBlockStatus } from "./blockstatus.js";
export { type GCOptions, PodGC } from "./gc.js";
export { ipamMetrics, registerIpamMetrics } from "./metrics.js";
export { NodeReconciler, nodeController } from "./node.js";
export {
  blocksClaimedLastHour,
  desiredPoolStatus,
  PoolStatusReconciler,
  poolStatusController,
} from "./poolstatus.js";
export {
  desiredReservationStatus,
  ReservationStatusReconciler,
  reservationStatusController,
} from "./reservation.js";

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

/** The one IPAM client the IPAM parts of a controller process share, over the controller's caches. */
export function ipamAssigner(ctx: ControllerContext, poolFilter?: (name: string) => boolean): Assigner {
  const { blocks, pools, nodes, reservations } = ctx.informers;
  return new Assigner({
    store: ctx.store,
    blocks,
    pools,
    reservations,
    nodeLabels: (n) => nodes.get(n)?.metadata?.labels,
    poolFilter,
  });
}

/**
 * The IPAM concerns of weft-controller: node join/leave, pool, block and reservation status, pod
 * address GC.
 */
export function ipamControllers(ctx: ControllerContext, opts: IpamPartsOptions = {}): Runnable[] {
  const { poolFilter, statusDelayMs } = opts;
  const assigner = ipamAssigner(ctx, poolFilter);
  const gc: GCOptions = { poolFilter };
  if (opts.gcGraceMs !== undefined) gc.graceMs = opts.gcGraceMs;
  if (opts.gcIntervalMs !== undefined) gc.intervalMs = opts.gcIntervalMs;
  return [
    nodeController(ctx, assigner, poolFilter),
    poolStatusController(ctx, assigner, poolFilter, statusDelayMs),
    blockStatusController(ctx, assigner, poolFilter, statusDelayMs),
    reservationStatusController(ctx, assigner, poolFilter, statusDelayMs),
    ipamMetrics(ctx, assigner, poolFilter),
    new PodGC(ctx, assigner, gc),
  ];
}
