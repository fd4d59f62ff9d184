import type {
  IPAMBlockSpec,
  IPPool,
  IPReservation,
  IPReservationStatus,
  ReservedAddressInUse,
} from "../../api/index.js";
import { NotFoundError } from "../../datastore/index.js";
import type { Assigner } from "../../ipam/client/index.js";
import { isIpamError, parsePool, reservationReport } from "../../ipam/index.js";
import { type ConditionInput, createLogger, mergeConditions, sameValue } from "../../lib/index.js";
import {
  and,
  type Controller,
  ControllerBuilder,
  generationChanged,
  matching,
  type ReconcileResult,
  type Reconciler,
  resourceVersionChanged,
} from "../../runtime/index.js";
import type { ControllerContext } from "../context.js";
import { inPools } from "./pools.js";

const log = createLogger("ipam-reservation");

/** Holders listed in the status; the InUse condition gives the full count. */
const MAX_LISTED = 100;

function describe(u: ReservedAddressInUse): string {
  return u.namespace && u.pod ? `${u.ip} (pod ${u.namespace}/${u.pod})` : `${u.ip} (${u.handle})`;
}

/**
 * What an IPReservation's status says: Ready unless an entry lies outside every pool (it reserves
 * nothing, which is most likely a typo), InUse while reserved addresses are still held (they stay
 * with their holders; the reservation only keeps new automatic assignments away).
 */
export function desiredReservationStatus(
  r: IPReservation,
  pools: readonly IPPool[],
  blocks: readonly IPAMBlockSpec[],
  now: string,
): IPReservationStatus {
  const cidrs = pools.flatMap((p) => {
    try {
      return [parsePool({ name: p.metadata.name, spec: p.spec }).cidr];
    } catch (e) {
      if (!isIpamError(e)) throw e;
      return [];
    }
  });
  const rep = reservationReport(r, cidrs, blocks);
  const conds: ConditionInput[] = [];
  const bad = [
    ...rep.invalid.map(
      (o) => `spec.reservedCIDRs[${o.index}] ${JSON.stringify(o.entry)} is neither an address nor a CIDR`,
    ),
    ...rep.outside.map(
      (o) => `spec.reservedCIDRs[${o.index}] ${o.entry} lies outside every IPPool and reserves nothing`,
    ),
  ];
  conds.push(
    bad.length > 0
      ? {
          type: "Ready",
          status: false,
          reason: "OutsidePools",
          message: `${bad.join("; ")}; the other entries are in force`,
        }
      : {
          type: "Ready",
          status: true,
          reason: "Reserving",
          message: `${rep.reservedAddresses} address(es) of the pools are kept out of automatic assignment`,
        },
  );
  const n = rep.inUse.length;
  conds.push(
    n > 0
      ? {
          type: "InUse",
          status: true,
          reason: "AddressesHeld",
          message:
            `${n} reserved address(es) are held and stay with their holders (fixed addresses, or held ` +
            `before the reservation): ${rep.inUse.slice(0, 10).map(describe).join(", ")}${n > 10 ? ", ..." : ""}`,
        }
      : { type: "InUse", status: false, reason: "NoneHeld", message: "no reserved address is held" },
  );
  const gen = r.metadata.generation;
  return {
    ...(gen !== undefined ? { observedGeneration: gen } : {}),
    conditions: mergeConditions(r.status?.conditions, conds, gen, now),
    reservedAddresses: rep.reservedAddresses.toString(),
    ...(n > 0 ? { inUse: rep.inUse.slice(0, MAX_LISTED) } : {}),
  };
}

/**
 * Keeps every IPReservation's status current as pools, blocks and the reservation change.
 * Reservations are few: a change of any pool or block looks at all of them, coalesced by the delay.
 */
export function reservationStatusController(
  ctx: ControllerContext,
  assigner: Assigner,
  poolFilter?: (name: string) => boolean,
  statusDelayMs = 1000,
): Controller {
  const { reservations, pools, blocks } = ctx.informers;
  const all = () => reservations.keys();
  return new ControllerBuilder("ipam-reservation", { workers: 1 })
    .for(reservations, { predicate: generationChanged })
    .watches(pools, all, { predicate: generationChanged, delayMs: statusDelayMs })
    .watches(blocks, all, {
      predicate: and(matching(inPools(poolFilter)), resourceVersionChanged),
      delayMs: statusDelayMs,
    })
    .complete(new ReservationStatusReconciler(ctx, assigner, poolFilter));
}

export class ReservationStatusReconciler implements Reconciler {
  constructor(
    private readonly ctx: ControllerContext,
    private readonly assigner: Assigner,
    private readonly poolFilter?: (name: string) => boolean,
  ) {}

  async reconcile(name: string): Promise<ReconcileResult | undefined> {
    const ctx = this.ctx;
    const r = ctx.informers.reservations.get(name);
    if (!r) return;
    const pools = ctx.informers.pools.list();
    // Several controllers over disjoint pools (--pool-selector, tests): one looks after a
    // reservation when it reserves in one of its pools. All of them judge it against every pool
    // and block, so two that look after one reservation write the same status.
    if (this.poolFilter && !this.concernsMe(r, pools)) return;
    const blocks = [...this.assigner.cache.all()].map((b) => b.spec);
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const want = desiredReservationStatus(r, pools, blocks, now);
    if (sameValue(r.status ?? {}, want)) return;
    try {
      await ctx.store.applyStatus("IPReservation", name, want);
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
    const ready = want.conditions?.find((c) => c.type === "Ready");
    if (ready?.status === "False")
      log.warn("reservation reserves less than it says", { reservation: name, message: ready.message });
    return;
  }

  private concernsMe(r: IPReservation, pools: readonly IPPool[]): boolean {
    const mine = pools.filter((p) => this.poolFilter!(p.metadata.name));
    const cidrs = mine.flatMap((p) => {
      try {
        return [parsePool({ name: p.metadata.name, spec: p.spec }).cidr];
      } catch {
        return [];
      }
    });
    const rep = reservationReport(r, cidrs, []);
    return (r.spec.reservedCIDRs ?? []).length - rep.outside.length - rep.invalid.length > 0;
  }
}
