import * as k8s from "@kubernetes/client-node";
import pMap from "p-map";
import { Counter, register } from "prom-client";
import type { Assigner } from "../../ipam/client/index.js";
import { findLeaks, type LeakedAddress, reservedHandleNode } from "../../ipam/index.js";
import { createLogger } from "../../lib/index.js";
import { type Controller, ControllerBuilder, type Runnable } from "../../runtime/index.js";
import type { ControllerContext } from "../context.js";
import { inPools } from "./pools.js";

const log = createLogger("ipam-gc");

const released =
  (register.getSingleMetric("weft_ipam_gc_released_total") as Counter<string>) ??
  new Counter({
    name: "weft_ipam_gc_released_total",
    help: "Leaked addresses released by the IPAM garbage collector",
    labelNames: ["pool"],
  });

export interface GCOptions {
  /** An address is released only after it was seen leaked at least this long ago (default 60 s). */
  graceMs?: number;
  /** Time between scans (default graceMs / 3, at least 100 ms). */
  intervalMs?: number;
  poolFilter?: (name: string) => boolean;
}

/** The one key of the GC's queue: every scan looks at every block. */
const SCAN = "scan";

/** Owner look-ups in flight at once: enough to clear a drained node quickly, few enough to be polite. */
const RECHECK_CONCURRENCY = 8;

/** Identity of one allocation as seen: a reused address has another sequence, so another key. */
function leakKey(l: LeakedAddress): string {
  return `${l.block}|${l.ordinal}|${l.handle}|${l.sequence}`;
}

/**
 * Frees addresses whose pod (or, for a reserved handle, whose node) is gone. Calico's GC freed
 * live addresses on a cache that lagged (#5044); here an address must be seen leaked in two scans
 * at least a grace period apart, is then re-checked against the apiserver itself, and is freed
 * with releaseIfSequence, so an address that was freed and handed out again meanwhile stays.
 * Scans are the reconciles of a one-key controller that comes back every intervalMs.
 */
export class PodGC implements Runnable {
  readonly name = "ipam-gc";
  private readonly graceMs: number;
  private readonly intervalMs: number;
  private readonly suspects = new Map<string, number>();
  private readonly api: k8s.CoreV1Api;
  private readonly controller: Controller;
  private stopped = false;
  readonly stats = { scans: 0, released: 0 };

  constructor(
    private readonly ctx: ControllerContext,
    private readonly assigner: Assigner,
    private readonly opts: GCOptions = {},
  ) {
    this.graceMs = opts.graceMs ?? 60_000;
    this.intervalMs = opts.intervalMs ?? Math.max(100, Math.floor(this.graceMs / 3));
    this.api = ctx.kc.makeApiClient(k8s.CoreV1Api);
    this.controller = new ControllerBuilder(this.name).complete(async () => {
      await this.scan().catch((err: unknown) => log.warn("GC scan failed", { error: String(err) }));
      return { requeueAfter: this.intervalMs };
    });
  }

  start(): void {
    this.controller.start();
    this.controller.queue.addAfter(SCAN, this.intervalMs);
  }

  /** A scan in progress stops between its steps; none starts after. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.controller.stop(false);
  }

  /**
   * One pass: note new suspects, release those seen leaked for longer than the grace period.
   * Owners are re-checked several at a time and every confirmed leak is queued at once, so the
   * assigner folds the releases on one block into one write: a deleted node's hundred pods cost
   * one write per block, not a hundred sequential round trips.
   */
  async scan(now = Date.now()): Promise<void> {
    const { nodes, pods } = this.ctx.informers;
    this.stats.scans++;
    const blocks = [...this.assigner.cache.all()].filter(inPools(this.opts.poolFilter));
    const leaks = findLeaks({
      blocks,
      nodeExists: (n) => nodes.get(n) !== undefined,
      podExists: (ns, p) => pods.get(`${ns}/${p}`) !== undefined,
      podNode: (ns, p) => pods.get(`${ns}/${p}`)?.spec?.nodeName,
    });
    const seen = new Set<string>();
    const due: LeakedAddress[] = [];
    for (const leak of leaks) {
      const key = leakKey(leak);
      seen.add(key);
      const first = this.suspects.get(key);
      if (first === undefined) this.suspects.set(key, now);
      else if (now - first >= this.graceMs) due.push(leak);
    }
    // An allocation not seen leaked in this scan starts over if it ever looks leaked again.
    for (const key of this.suspects.keys()) if (!seen.has(key)) this.suspects.delete(key);
    if (due.length === 0 || this.stopped) return;

    const checked = await pMap(
      due,
      async (leak) => {
        try {
          return { leak, leaked: await this.stillLeaked(leak) };
        } catch (err) {
          // Kept as a suspect: the next scan checks it again.
          log.warn("could not re-check a leaked address", {
            ip: leak.ip,
            handle: leak.handle,
            error: String(err),
          });
          return undefined;
        }
      },
      { concurrency: RECHECK_CONCURRENCY },
    );
    const confirmed: LeakedAddress[] = [];
    for (const c of checked) {
      if (!c) continue;
      if (c.leaked) confirmed.push(c.leak);
      else this.suspects.delete(leakKey(c.leak));
    }
    if (this.stopped) return;

    const results = await Promise.allSettled(
      confirmed.map((leak) =>
        this.assigner.releaseAddress({
          handle: leak.handle,
          block: leak.block,
          ordinal: leak.ordinal,
          sequence: leak.sequence,
        }),
      ),
    );
    for (const [i, r] of results.entries()) {
      const leak = confirmed[i]!;
      if (r.status === "rejected") {
        log.warn("could not release a leaked address", {
          ip: leak.ip,
          handle: leak.handle,
          error: String(r.reason),
        });
        continue;
      }
      this.suspects.delete(leakKey(leak));
      if (r.value.length > 0) {
        this.stats.released++;
        released.inc({ pool: leak.pool });
        log.info("released leaked address", { ip: leak.ip, handle: leak.handle, reason: leak.reason });
      }
    }
  }

  /** The owner is looked up in the apiserver itself, not in a cache that may lag. */
  private async stillLeaked(leak: LeakedAddress): Promise<boolean> {
    const api = this.api;
    try {
      const node = reservedHandleNode(leak.handle);
      if (node !== undefined) await api.readNode({ name: node });
      else if (leak.namespace && leak.pod) {
        const pod = await api.readNamespacedPod({ namespace: leak.namespace, name: leak.pod });
        // A pod of that name that runs elsewhere is a later pod (a StatefulSet's), not the holder.
        const runsOn = pod.spec?.nodeName;
        return Boolean(runsOn && leak.node && runsOn !== leak.node);
      } else return false;
      return false;
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 404) return true;
      throw err;
    }
  }
}
