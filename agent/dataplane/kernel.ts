/**
 * KernelDataplane: keeps this network namespace's kernel at the desired state.
 *
 * - setDesired() diffs against what we know the kernel holds and applies only the difference
 *   (packed netlink requests), so one changed intent costs a handful of requests, not a dump.
 * - What we know is a full dump at start and at every resync, kept current by netlink events
 *   (our own changes come back as events too). An event that shows drift — an owned entry
 *   deleted or changed by someone else — schedules a repair after a short debounce.
 * - IPv4 routes vanish silently when their device goes down or is deleted (no RTM_DELROUTE), so a
 *   link event that shows our device down or gone triggers a full resync instead.
 * - A periodic full resync is the backstop for anything events missed (and for ENOBUFS on the
 *   event socket, which means some were lost).
 * - On start it diffs against the kernel rather than flushing: entries from a previous run that
 *   are still wanted are left untouched, so a restart drops no traffic.
 *
 * All work runs one operation at a time through a queue.
 */
import type { Logger } from "../../lib/log.js";
import { type BulkOptions, BulkSender } from "../netlink/bulk.js";
import * as C from "../netlink/constants.js";
import { AF_BRIDGE, AF_INET, AF_INET6 } from "../netlink/constants.js";
import {
  decodeAddress,
  decodeLink,
  decodeNeighbor,
  decodeRoute,
  type RawMessage,
} from "../netlink/decode.js";
import { Rtnl, type Subscription, subscribe } from "../netlink/rtnl.js";
import { type ActionFailure, applyActions } from "./apply.js";
import { type DesiredIndex, indexDesired } from "./desired.js";
import { diff, fdbRemoteInSync, neighborInSync, routeInSync } from "./diff.js";
import { DEFAULT_VXLAN, type DesiredState, emptyObserved, type ObservedState } from "./model.js";
import { buildObserved, classifyFdb, classifyNeighbor, classifyRoute } from "./observe.js";
import { ensureVxlan, planAddresses, planVxlan, type UnderlayInfo } from "./vxlan.js";

export interface KernelDataplaneOptions {
  /** Devices whose neighbor and FDB entries are ours even when not currently desired. */
  managedDevices?: string[];
  /** Full resync period (default 60 s). */
  resyncIntervalMs?: number;
  /** Debounce between a drift event and its repair (default 100 ms). */
  repairDelayMs?: number;
  /** Address families of routes and neighbors (default IPv4 and IPv6). */
  families?: number[];
  bulk?: BulkOptions;
  logger?: Logger;
}

export interface ApplyResult {
  reason: "desired" | "repair" | "resync";
  actions: number;
  ok: number;
  failed: ActionFailure[];
  conflicts: string[];
  /** Device changes made (created, MTU, address...). */
  device: string[];
  ms: number;
}

export interface DataplaneStatus {
  owned: { routes: number; neighbors: number; fdb: number };
  desired: { routes: number; neighbors: number; fdb: number };
  vxlan?: { name: string; index: number; underlay: string; mtu?: number };
  conflicts: string[];
  failed: ActionFailure[];
  lastError?: string;
  lastResync?: string;
  counters: { resyncs: number; repairs: number; applies: number; requests: number; eventOverflows: number };
  /** Last apply converged: no failures and nothing left to do. */
  converged: boolean;
}

const EMPTY: DesiredState = { routes: [], neighbors: [], fdb: [] };

export class KernelDataplane {
  private readonly opts: Required<Omit<KernelDataplaneOptions, "logger" | "bulk">> & {
    bulk: BulkOptions;
  };
  private readonly log: Logger | undefined;
  private rtnl: Rtnl | undefined;
  private bulk: BulkSender | undefined;
  private sub: Subscription | undefined;
  private want: DesiredIndex = indexDesired(EMPTY);
  private have: ObservedState = emptyObserved();
  private readonly names = new Map<number, string>();
  private readonly indexes = new Map<string, number>();
  private managed: Set<string>;
  private queue: Promise<unknown> = Promise.resolve();
  private pendingDesired: Promise<ApplyResult> | undefined;
  private repairTimer: NodeJS.Timeout | undefined;
  private deviceTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  /** Events that arrive while a resync dumps are replayed on top of the dump. */
  private eventBuffer: RawMessage[] | undefined;
  private deviceDisturbed = false;
  private eventCount = 0;
  private ensuredVxlan = "";
  private vxlan: { name: string; index: number; underlay: UnderlayInfo; mtu?: number } | undefined;
  private running = false;
  private lastConflicts: string[] = [];
  private lastFailed: ActionFailure[] = [];
  private lastError: string | undefined;
  private lastResync: Date | undefined;
  private converged = false;
  private readonly counters = { resyncs: 0, repairs: 0, applies: 0, requests: 0, eventOverflows: 0 };

  constructor(opts: KernelDataplaneOptions = {}) {
    this.opts = {
      managedDevices: opts.managedDevices ?? [DEFAULT_VXLAN.name],
      resyncIntervalMs: opts.resyncIntervalMs ?? 60_000,
      repairDelayMs: opts.repairDelayMs ?? 100,
      families: opts.families ?? [AF_INET, AF_INET6],
      bulk: opts.bulk ?? {},
    };
    this.log = opts.logger;
    this.managed = new Set(this.opts.managedDevices);
  }

  /** Opens the sockets (in the current network namespace), subscribes to events, resyncs. */
  async start(): Promise<ApplyResult> {
    if (this.running) throw new Error("already started");
    this.rtnl = new Rtnl();
    // between batches, let the event socket catch up: our own changes come back as notifications,
    // and a socket that overflows aborts the process (see bulk.ts)
    this.bulk = new BulkSender({ ...this.opts.bulk, afterBatch: () => this.drainEvents() });
    this.sub = subscribe(
      [C.RTNLGRP_LINK, C.RTNLGRP_NEIGH, C.RTNLGRP_IPV4_IFADDR, C.RTNLGRP_IPV4_ROUTE, C.RTNLGRP_IPV6_ROUTE],
      (m) => this.onEvent(m),
      () => {
        this.counters.eventOverflows++;
        this.log?.warn("netlink events overflowed; full resync");
        this.scheduleDeviceCheck(true);
      },
    );
    this.running = true;
    this.resyncTimer = setInterval(
      () => void this.resync().catch(() => undefined),
      this.opts.resyncIntervalMs,
    );
    this.resyncTimer.unref();
    return this.resync();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const t of [this.repairTimer, this.deviceTimer]) if (t) clearTimeout(t);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.repairTimer = this.deviceTimer = this.resyncTimer = undefined;
    await this.queue.catch(() => undefined);
    this.sub?.close();
    this.bulk?.close();
    this.rtnl?.close();
    this.sub = this.bulk = this.rtnl = undefined;
  }

  /**
   * Makes `desired` the target and converges to it. Calls made while one is being applied are
   * coalesced: the latest desired state wins.
   */
  setDesired(desired: DesiredState): Promise<ApplyResult> {
    this.want = indexDesired(desired);
    for (const d of this.want.devices) this.managed.add(d);
    if (!this.running) return Promise.resolve(this.noop("desired"));
    if (this.pendingDesired) return this.pendingDesired;
    const p = this.enqueue(async () => {
      this.pendingDesired = undefined;
      // a different device configuration may recreate the device: that needs the full path
      if (JSON.stringify(this.want.state.vxlan ?? null) !== this.ensuredVxlan)
        return this.fullResync("desired");
      return this.converge("desired");
    });
    this.pendingDesired = p;
    return p;
  }

  /** Full dump, device check and diff (what start does, and the periodic backstop). */
  resync(): Promise<ApplyResult> {
    if (!this.running) return Promise.resolve(this.noop("resync"));
    return this.enqueue(() => this.fullResync("resync"));
  }

  status(): DataplaneStatus {
    return {
      owned: { routes: this.have.routes.size, neighbors: this.ownedNeighbors(), fdb: this.have.fdb.size },
      desired: {
        routes: this.want.routes.size,
        neighbors: this.want.neighbors.size,
        fdb: this.want.fdb.size,
      },
      ...(this.vxlan
        ? {
            vxlan: {
              name: this.vxlan.name,
              index: this.vxlan.index,
              underlay: this.vxlan.underlay.name,
              mtu: this.vxlan.mtu,
            },
          }
        : {}),
      conflicts: this.lastConflicts,
      failed: this.lastFailed,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.lastResync ? { lastResync: this.lastResync.toISOString() } : {}),
      counters: { ...this.counters },
      converged: this.converged,
    };
  }

  private ownedNeighbors(): number {
    let n = 0;
    for (const e of this.have.neighbors.values()) if (e.permanent) n++;
    return n;
  }

  private enqueue<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f);
    this.queue = run.catch((err) => {
      this.lastError = err instanceof Error ? err.message : String(err);
      this.log?.error("dataplane operation failed", { error: this.lastError });
    });
    return run;
  }

  private noop(reason: ApplyResult["reason"]): ApplyResult {
    return { reason, actions: 0, ok: 0, failed: [], conflicts: [], device: [], ms: 0 };
  }

  /** Applies the difference between what we want and what we know the kernel holds. */
  private async converge(reason: ApplyResult["reason"], device: string[] = [], t0 = performance.now()) {
    const plan = diff(this.want, this.have);
    const res = await applyActions(this.bulk!, plan.actions, (d) => this.indexes.get(d), this.have);
    this.counters.applies++;
    this.counters.requests += plan.actions.length;
    this.lastConflicts = plan.conflicts;
    this.lastFailed = res.failed;
    this.converged = res.failed.length === 0;
    const out: ApplyResult = {
      reason,
      actions: plan.actions.length,
      ok: res.ok,
      failed: res.failed,
      conflicts: plan.conflicts,
      device,
      ms: performance.now() - t0,
    };
    if (res.failed.length) {
      this.log?.warn("some kernel changes failed", {
        reason,
        failed: res.failed.slice(0, 10),
        n: res.failed.length,
      });
    } else if (plan.actions.length) {
      this.log?.debug("kernel converged", { reason, actions: plan.actions.length, ms: Math.round(out.ms) });
    }
    return out;
  }

  private async fullResync(reason: ApplyResult["reason"]): Promise<ApplyResult> {
    const t0 = performance.now();
    const rtnl = this.rtnl!;
    this.eventBuffer = [];
    const device: string[] = [];
    try {
      this.deviceDisturbed = false;
      const cfg = this.want.state.vxlan;
      if (cfg) {
        const r = await ensureVxlan(rtnl, cfg);
        device.push(...r.changes);
        this.vxlan = { name: cfg.name, index: r.link.index, underlay: r.underlay, mtu: r.link.mtu };
        if (r.changes.length) this.log?.info("vxlan device", { changes: r.changes });
      } else {
        this.vxlan = undefined;
      }
      this.ensuredVxlan = JSON.stringify(cfg ?? null);

      const links = await rtnl.links();
      this.names.clear();
      this.indexes.clear();
      for (const l of links) {
        this.names.set(l.index, l.name);
        this.indexes.set(l.name, l.index);
      }
      const routes = [];
      const neighbors = [];
      for (const f of this.opts.families) {
        routes.push(...(await rtnl.routes(f)));
        neighbors.push(...(await rtnl.neighbors(f)));
      }
      const fdb = await rtnl.neighbors(AF_BRIDGE);
      this.have = buildObserved(routes, neighbors, fdb, this.names, this.managed);
    } catch (err) {
      this.eventBuffer = undefined;
      this.lastError = err instanceof Error ? err.message : String(err);
      throw err;
    }
    const buffered = this.eventBuffer;
    this.eventBuffer = undefined;
    for (const m of buffered) this.handleEvent(m, true);
    this.counters.resyncs++;
    this.lastResync = new Date();
    this.lastError = undefined;
    return this.converge(reason, device, t0);
  }

  /** Someone touched our device: make it right; a full resync if it was down or recreated. */
  private async deviceCheck(): Promise<ApplyResult> {
    const cfg = this.want.state.vxlan;
    if (this.deviceDisturbed || !cfg || !this.vxlan) return this.fullResync("repair");
    const rtnl = this.rtnl!;
    const link = await rtnl.link(cfg.name);
    const plan = planVxlan(cfg, link, this.vxlan.underlay);
    const underlay = await rtnl.link(this.vxlan.underlay.name);
    const addrs = link ? (await rtnl.addresses()).filter((a) => a.index === link.index) : [];
    const ap = planAddresses(cfg.address, addrs);
    const sameUnderlay =
      underlay?.index === this.vxlan.underlay.index && underlay.mtu === this.vxlan.underlay.mtu;
    if (plan.op === "none" && link?.index === this.vxlan.index && sameUnderlay && !ap.add && !ap.del.length) {
      return this.noop("repair");
    }
    return this.fullResync("repair");
  }

  private scheduleRepair(): void {
    if (this.repairTimer || !this.running) return;
    this.repairTimer = setTimeout(() => {
      this.repairTimer = undefined;
      this.counters.repairs++;
      void this.enqueue(() => this.converge("repair")).catch(() => undefined);
    }, this.opts.repairDelayMs);
  }

  private scheduleDeviceCheck(disturbed: boolean): void {
    if (disturbed) this.deviceDisturbed = true;
    if (this.deviceTimer || !this.running) return;
    this.deviceTimer = setTimeout(() => {
      this.deviceTimer = undefined;
      this.counters.repairs++;
      void this.enqueue(() => this.deviceCheck()).catch(() => undefined);
    }, this.opts.repairDelayMs);
  }

  /**
   * Yields to the event loop until a whole loop turn (one that polled the sockets; the native
   * reader takes at most 32 datagrams per poll) passed without a notification.
   */
  private async drainEvents(): Promise<void> {
    const immediate = () => new Promise<void>((r) => setImmediate(r));
    for (let turns = 0; turns < 1_000_000; turns++) {
      const before = this.eventCount;
      // called from a reply read in the poll phase, the first immediate runs before the next poll
      await immediate();
      await immediate();
      if (this.eventCount === before) return;
    }
  }

  private onEvent(m: RawMessage): void {
    this.eventCount++;
    if (this.eventBuffer) {
      this.eventBuffer.push(m);
      return;
    }
    this.handleEvent(m, false);
  }

  /**
   * Updates what we know from one notification, then checks that key against the desired state.
   * `replay`: the event arrived during a resync's dumps; link changes it shows were seen by the
   * resync itself, so they only refresh names.
   */
  private handleEvent(m: RawMessage, replay: boolean): void {
    try {
      switch (m.type) {
        case C.RTM_NEWROUTE:
        case C.RTM_DELROUTE: {
          const c = classifyRoute(decodeRoute(m.body), this.names);
          if (!c) return;
          const added = m.type === C.RTM_NEWROUTE;
          if (c.owned) {
            if (added) this.have.routes.set(c.key, c.entry);
            else this.have.routes.delete(c.key);
          } else if (added) {
            this.have.foreignRoutes.add(c.key);
            this.have.routes.delete(c.key); // ours was replaced by someone else's
          } else {
            this.have.foreignRoutes.delete(c.key);
          }
          if (!routeInSync(this.want, this.have, c.key)) this.scheduleRepair();
          return;
        }
        case C.RTM_NEWNEIGH:
        case C.RTM_DELNEIGH: {
          const n = decodeNeighbor(m.body);
          const added = m.type === C.RTM_NEWNEIGH;
          if (n.bridge) {
            const c = classifyFdb(n, this.names, this.managed);
            if (!c) return;
            if (added) this.have.fdb.set(c.key, c.entry);
            else this.have.fdb.delete(c.key);
            if (!fdbRemoteInSync(this.want, c.entry, added)) this.scheduleRepair();
            return;
          }
          const c = classifyNeighbor(n, this.names, this.managed);
          if (!c) return;
          if (added) this.have.neighbors.set(c.key, c.entry);
          else this.have.neighbors.delete(c.key);
          if (!neighborInSync(this.want, this.have, c.key)) this.scheduleRepair();
          return;
        }
        case C.RTM_NEWLINK:
        case C.RTM_DELLINK: {
          const l = decodeLink(m.body);
          const old = this.names.get(l.index);
          if (m.type === C.RTM_DELLINK) {
            this.names.delete(l.index);
            if (old !== undefined && this.indexes.get(old) === l.index) this.indexes.delete(old);
          } else {
            if (old !== undefined && old !== l.name && this.indexes.get(old) === l.index)
              this.indexes.delete(old);
            this.names.set(l.index, l.name);
            this.indexes.set(l.name, l.index);
          }
          const v = this.vxlan;
          if (replay || !v) return;
          if (l.index === v.index || l.name === v.name) {
            const gone = m.type === C.RTM_DELLINK || !l.up || l.index !== v.index;
            if (gone) this.scheduleDeviceCheck(true);
            else if (l.mtu !== v.mtu || (this.want.state.vxlan?.mac && l.mac !== this.want.state.vxlan.mac)) {
              this.scheduleDeviceCheck(false);
            }
          } else if (l.index === v.underlay.index && (l.mtu !== v.underlay.mtu || m.type === C.RTM_DELLINK)) {
            this.scheduleDeviceCheck(false);
          }
          return;
        }
        case C.RTM_NEWADDR:
        case C.RTM_DELADDR: {
          const v = this.vxlan;
          if (replay || !v) return;
          const a = decodeAddress(m.body);
          if (a.index !== v.index || a.scope !== 0) return;
          const want = this.want.state.vxlan?.address;
          const added = m.type === C.RTM_NEWADDR;
          if ((added && a.cidr !== want) || (!added && a.cidr === want)) this.scheduleDeviceCheck(false);
          return;
        }
      }
    } catch (err) {
      this.log?.warn("undecodable netlink event", { type: m.type, error: String(err) });
    }
  }
}
