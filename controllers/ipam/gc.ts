import * as k8s from "@kubernetes/client-node";
import pMap from "p-map";
import { Counter, register } from "prom-client";
import { findLeaks, type LeakedAddress, reservedHandleNode } from "../../ipam/index.js";
import { createLogger } from "../../lib/index.js";
import type { ControllerContext, ControllerPart } from "../context.js";
import type { IpamShared } from "./shared.js";

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
 */
export class PodGC implements ControllerPart {
  readonly name = "ipam-gc";
  private readonly graceMs: number;
  private readonly intervalMs: number;
  private readonly suspects = new Map<string, number>();
  private ctx: ControllerContext | undefined;
  private api: k8s.CoreV1Api | undefined;
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private stopped = false;
  readonly stats = { scans: 0, released: 0 };

  constructor(
    private readonly shared: IpamShared,
    private readonly opts: GCOptions = {},
  ) {
    this.graceMs = opts.graceMs ?? 60_000;
    this.intervalMs = opts.intervalMs ?? Math.max(100, Math.floor(this.graceMs / 3));
  }

  start(ctx: ControllerContext): void {
    this.ctx = ctx;
    this.shared.init(ctx);
    this.api = ctx.kc.makeApiClient(k8s.CoreV1Api);
    const tick = () => {
      if (this.stopped) return;
      this.scanning = this.scan()
        .catch((err: unknown) => {
          log.warn("GC scan failed", { error: String(err) });
        })
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.intervalMs);
        });
    };
    this.timer = setTimeout(tick, this.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.scanning;
  }

  /**
   * One pass: note new suspects, release those seen leaked for longer than the grace period.
   * Owners are re-checked several at a time and every confirmed leak is queued at once, so the
   * assigner folds the releases on one block into one write: a deleted node's hundred pods cost
   * one write per block, not a hundred sequential round trips.
   */
  async scan(now = Date.now()): Promise<void> {
    const ctx = this.ctx!;
    const { nodes, pods } = ctx.informers;
    this.stats.scans++;
    const filter = this.opts.poolFilter;
    const blocks = [...this.shared.assigner!.cache.all()].filter((b) => !filter || filter(b.spec.pool));
    const leaks = findLeaks({
      blocks,
      nodeExists: (n) => nodes.get(n) !== undefined,
      podExists: (ns, p) => pods.get(`${ns}/${p}`) !== undefined,
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
        this.shared.assigner!.releaseAddress({
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
    const api = this.api!;
    try {
      const node = reservedHandleNode(leak.handle);
      if (node !== undefined) await api.readNode({ name: node });
      else if (leak.namespace && leak.pod)
        await api.readNamespacedPod({ namespace: leak.namespace, name: leak.pod });
      else return false;
      return false;
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 404) return true;
      throw err;
    }
  }
}
