import { hostname } from "node:os";
import {
  API_VERSION,
  type Condition,
  FINALIZERS,
  type IPAMBlock,
  type IPAMBlockSpec,
  type IPPool,
  type IPPoolStatus,
} from "../../api/index.js";
import { ConflictError, NotFoundError } from "../../datastore/index.js";
import type { Assigner } from "../../ipam/client/index.js";
import {
  exhaustionOutlook,
  isEmptyOfPods,
  isIpamError,
  parsePool,
  poolUsage,
  poolView,
} from "../../ipam/index.js";
import { conditionOf, createLogger, mergeConditions, sameValue } from "../../lib/index.js";
import {
  and,
  beingDeleted,
  type Controller,
  ControllerBuilder,
  changed,
  EventRecorder,
  generationChanged,
  labelsChanged,
  matching,
  or,
  type ReconcileResult,
  type Reconciler,
  resourceVersionChanged,
  resync,
} from "../../runtime/index.js";
import type { ControllerContext } from "../context.js";
import { ClaimCounter } from "./claims.js";
import { inPools } from "./pools.js";

const log = createLogger("ipam-pool");

/** How often a pool's status is looked at again without any change (the forecast's hour moves on). */
const FORECAST_REFRESH_MS = 5 * 60_000;

type CondInput = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

const HOUR_MS = 3_600_000;

/** Blocks of the list claimed (created) within the hour before `now`. */
export function blocksClaimedLastHour(
  blocks: readonly { metadata?: { creationTimestamp?: string | Date } }[],
  now: Date,
): number {
  let n = 0;
  for (const b of blocks) {
    const t = b.metadata?.creationTimestamp;
    if (t === undefined) continue;
    const at = new Date(t).getTime();
    if (now.getTime() - at <= HOUR_MS) n++;
  }
  return n;
}

/**
 * What the pool's status should say, from the pool, every pool (overlaps) and the blocks.
 * `addressesLastHour` is what the controller counted itself (the blocks do not record when an
 * address was handed out); block claims come from the blocks' creation times.
 */
export function desiredPoolStatus(
  pool: IPPool,
  all: readonly IPPool[],
  blocks: readonly { spec: IPAMBlockSpec; metadata?: { creationTimestamp?: string | Date } }[],
  now: string,
  filter?: (name: string) => boolean,
  addressesLastHour = 0,
  /** Conditions other parts add (the Flannel part's FlannelCompatible). */
  extra: readonly CondInput[] = [],
): IPPoolStatus {
  const name = pool.metadata.name;
  const gen = pool.metadata.generation;
  const view = poolView(all, filter);
  const conds: CondInput[] = [];
  const status: IPPoolStatus = {};
  if (gen !== undefined) status.observedGeneration = gen;
  let parsed: ReturnType<typeof parsePool> | undefined;
  try {
    parsed = parsePool({ name, spec: pool.spec });
  } catch (e) {
    if (!isIpamError(e)) throw e;
    conds.push({ type: "Ready", status: "False", reason: "Invalid", message: e.message });
  }
  const others = view.overlaps.get(name) ?? [];
  const shadowed = view.shadowed.has(name);
  if (parsed) {
    const u = poolUsage(
      parsed,
      blocks.map((b) => b.spec),
    );
    // the family default the CRD cannot apply, shown by `kubectl get ippools` (BLOCKSIZE)
    status.blockSize = parsed.blockSize;
    status.blocks = {
      used: u.blocksUsed,
      total: u.blocksTotal.toString(),
      free: (u.blocksTotal - BigInt(u.blocksUsed)).toString(),
    };
    status.addresses = { used: u.addressesUsed, free: u.addressesFree.toString() };
    const mineBlocks = blocks.filter((b) => b.spec.pool === name);
    const blocksLastHour = blocksClaimedLastHour(mineBlocks, new Date(now));
    status.claims = { blocksLastHour, addressesLastHour };
    const warn = pool.spec.exhaustionWarning;
    const outlook = exhaustionOutlook({
      usage: u,
      blocksLastHour,
      ...(warn?.usedPercent !== undefined ? { usedPercent: warn.usedPercent } : {}),
      ...(warn?.forecastHours !== undefined ? { forecastHours: warn.forecastHours } : {}),
      now: new Date(now),
    });
    if (outlook.blocksExhaustedAt)
      status.blocksExhaustedAt = outlook.blocksExhaustedAt.toISOString().replace(/\.\d+Z$/, "Z");
    const deleting = Boolean(pool.metadata.deletionTimestamp);
    if (deleting) {
      conds.push({
        type: "Ready",
        status: "False",
        reason: "Draining",
        message: `pool is being deleted: no new addresses; ${u.addressesUsed} address(es) still allocated`,
      });
    } else if (shadowed) {
      conds.push({
        type: "Ready",
        status: "False",
        reason: "Overlapping",
        message: `pool overlaps ${others.join(", ")} and is not used`,
      });
    } else if (parsed.disabled) {
      conds.push({
        type: "Ready",
        status: "False",
        reason: "Disabled",
        message: "pool is disabled: no new addresses",
      });
    } else {
      conds.push({ type: "Ready", status: "True", reason: "Allocating", message: "pool gives addresses" });
    }
    conds.push({
      type: "NearlyExhausted",
      status: outlook.nearlyExhausted ? "True" : "False",
      reason: outlook.reason,
      message: outlook.message,
    });
    const exhausted = BigInt(u.blocksUsed) >= u.blocksTotal;
    conds.push(
      exhausted
        ? {
            type: "Exhausted",
            status: "True",
            reason: u.addressesFree === 0n ? "NoFreeAddresses" : "NoFreeBlocks",
            message: `all ${u.blocksTotal} blocks are claimed; ${u.addressesFree} address(es) free inside them`,
          }
        : {
            type: "Exhausted",
            status: "False",
            reason: "BlocksAvailable",
            message: `${u.blocksTotal - BigInt(u.blocksUsed)} of ${u.blocksTotal} blocks free`,
          },
    );
  }
  conds.push(
    others.length > 0
      ? {
          type: "Overlapping",
          status: "True",
          reason: shadowed ? "OverlapsOlderPool" : "OverlappedByNewerPool",
          message: shadowed
            ? `overlaps ${others.join(", ")}; this pool is not used`
            : `overlapped by ${others.join(", ")}; this pool stays in use, the newer one is not used`,
        }
      : {
          type: "Overlapping",
          status: "False",
          reason: "NoOverlap",
          message: "no other pool overlaps this one",
        },
  );
  conds.push(...extra);
  status.conditions = mergeConditions(pool.status?.conditions, conds, gen, now);
  return status;
}

/**
 * IPPool status (usage and conditions) and the pool-drain finalizer: a pool that is deleted
 * gives no new addresses, keeps its finalizer while pods hold addresses in it, and once drained
 * its blocks are deleted and the finalizer removed. Any pool event brings back every pool (one
 * pool's overlap is another's); block changes are coalesced into at most one status write per
 * pool every statusDelayMs (default 5 s: usage counters, so a storm of node joins costs a few
 * pool writes, not one a second).
 */
export function poolStatusController(
  ctx: ControllerContext,
  assigner: Assigner,
  poolFilter?: (name: string) => boolean,
  statusDelayMs = 5000,
): Controller {
  const { pools, blocks } = ctx.informers;
  const ok = (name: string) => !poolFilter || poolFilter(name);
  const reconciler = new PoolStatusReconciler(ctx, assigner, poolFilter);
  // Addresses handed out are counted as the blocks' sequences move (the forecast's claim rate).
  blocks.on({
    add: (b) => ok(b.spec.pool) && reconciler.claims.blockAdded(b, Date.now()),
    update: (o, b) => ok(b.spec.pool) && reconciler.claims.blockUpdated(o, b, Date.now()),
  });
  const controller = new ControllerBuilder("ipam-pool", { workers: 2 })
    // Not its own status writes: each would bring the pool straight back, see the blocks claimed
    // meanwhile and write again, round trip after round trip, whatever the delay below says.
    // Labels do: a label can bring a pool into this controller's --pool-selector.
    .watches(pools, () => pools.keys().filter(ok), {
      predicate: or(
        resync,
        generationChanged,
        labelsChanged,
        beingDeleted,
        changed<IPPool>((p) => p.metadata.finalizers ?? []),
      ),
    })
    .watches(blocks, (b) => b.spec.pool, {
      predicate: and(matching(inPools(poolFilter)), resourceVersionChanged),
      delayMs: statusDelayMs,
    })
    .complete(reconciler);
  // The pool's FlannelCompatible condition follows Flannel's config and leases.
  const { flannel } = ctx;
  if (flannel)
    controller.watch(() =>
      flannel.onChange(({ pools: changed }) => {
        for (const p of changed) if (ok(p)) controller.enqueue(p);
      }),
    );
  return controller;
}

export class PoolStatusReconciler implements Reconciler {
  /** Addresses handed out per pool over the last hour. */
  readonly claims = new ClaimCounter();
  private readonly events: EventRecorder;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly assigner: Assigner,
    private readonly poolFilter?: (name: string) => boolean,
  ) {
    this.events = new EventRecorder(ctx.kc, {
      component: "weft-controller",
      instance: process.env.POD_NAME ?? hostname(),
    });
  }

  async reconcile(name: string): Promise<ReconcileResult | undefined> {
    const ctx = this.ctx;
    const pool = ctx.informers.pools.get(name);
    if (!pool) return;
    const cache = this.assigner.cache;
    const blocks = [...cache.all()].filter((b) => b.spec.pool === name);
    const fin = FINALIZERS.pool;
    const has = pool.metadata.finalizers?.includes(fin) ?? false;
    try {
      if (pool.metadata.deletionTimestamp) {
        if (!blocks.every((b) => isEmptyOfPods(b.spec))) {
          await this.writeStatus(pool, blocks);
          return { requeueAfter: 5000 };
        }
        for (const b of blocks) {
          await ctx.store.delete("IPAMBlock", b.metadata.name, {
            resourceVersion: b.metadata.resourceVersion,
          });
          cache.remove(b.metadata.name);
        }
        if (has) {
          await ctx.store.applyFinalizer("IPPool", name, fin, false, { uid: pool.metadata.uid });
          log.info("pool drained, finalizer removed", { pool: name, blocksDeleted: blocks.length });
        }
        return;
      }
      if (!has) {
        // Server-side apply of the finalizer alone: the spec stays owned by whoever applied it.
        await ctx.store.applyFinalizer("IPPool", name, fin, true, { uid: pool.metadata.uid });
        return; // the update event brings the pool back for its status
      }
      await this.writeStatus(pool, blocks);
    } catch (err) {
      if (err instanceof ConflictError || err instanceof NotFoundError) return { requeueAfter: 200 };
      throw err;
    }
    // The last hour moves on without any event: claims age out of the forecast.
    return { requeueAfter: FORECAST_REFRESH_MS };
  }

  private async writeStatus(pool: IPPool, blocks: readonly IPAMBlock[]) {
    const ctx = this.ctx;
    const at = new Date();
    const now = at.toISOString().replace(/\.\d+Z$/, "Z");
    const name = pool.metadata.name;
    const want = desiredPoolStatus(
      pool,
      ctx.informers.pools.list(),
      blocks,
      now,
      this.poolFilter,
      this.claims.lastHour(name, at.getTime()),
      ctx.flannel?.poolConditions(pool.metadata.name),
    );
    if (sameValue(pool.status ?? {}, want)) return;
    await ctx.store.applyStatus("IPPool", name, want);
    this.warnOnTransition(pool, want, "NearlyExhausted", "PoolNearlyExhausted");
    this.warnOnTransition(pool, want, "Exhausted", "PoolExhausted");
  }

  /** One Warning Event on the pool when a condition turns True (the status says it all along). */
  private warnOnTransition(pool: IPPool, want: IPPoolStatus, type: string, reason: string): void {
    const before = conditionOf(pool.status?.conditions, type)?.status;
    const after = conditionOf(want.conditions, type);
    if (after?.status !== "True" || before === "True") return;
    log.warn("pool running out of addresses", {
      pool: pool.metadata.name,
      condition: type,
      message: after.message,
    });
    void this.events.warn(
      {
        apiVersion: API_VERSION,
        kind: "IPPool",
        name: pool.metadata.name,
        ...(pool.metadata.uid ? { uid: pool.metadata.uid } : {}),
      },
      reason,
      `${type}: ${after.message}`,
    );
  }
}
