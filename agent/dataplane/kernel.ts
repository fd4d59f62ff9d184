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
 * All work runs one operation at a time (a Serial); setDesired calls that arrive while an apply
 * waits its turn are folded into it (a group commit).
 */
import { canonicalJson, errorMessage, GroupCommit, jittered, type Logger, Serial } from "../../lib/index.js";
import * as C from "../../netlink/index.js";
import {
  AF_BRIDGE,
  AF_INET,
  AF_INET6,
  type BulkOptions,
  BulkSender,
  decodeAddress,
  decodeLink,
  decodeNeighbor,
  decodeNexthop,
  decodeRoute,
  type RawMessage,
  Rtnl,
  type Subscription,
  subscribe,
} from "../../netlink/index.js";
import { type ActionFailure, applyActions, collectNexthops, type NexthopUse } from "./apply.js";
import { type DesiredIndex, indexDesired } from "./desired.js";
import {
  diff,
  diffKeys,
  fdbRemoteInSync,
  markDifference,
  neighborInSync,
  type Plan,
  routeInSync,
} from "./diff.js";
import {
  type Action,
  DEFAULT_VXLAN,
  type DesiredState,
  emptyObserved,
  fdbMacKey,
  forgetFdb,
  forgetNexthop,
  forgetRoute,
  neighborKey,
  type ObservedState,
  observeFdb,
  observeNexthop,
  observeRoute,
  routeKey,
} from "./model.js";
import { buildObserved, classifyFdb, classifyNeighbor, classifyNexthop, classifyRoute } from "./observe.js";
import { type DesiredChanges, type DesiredSource, emptyChanges } from "./tracker.js";
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
  /**
   * Gateway routes on a device point at shared nexthop objects (default true; turned off by
   * itself on a kernel without them). The kernel inserts those in O(log n) instead of comparing
   * every gateway route on the device: 10,000 VXLAN routes in ~0.3 s instead of ~2.5 s.
   */
  nexthops?: boolean;
  bulk?: BulkOptions;
  logger?: Logger;
}

/** The device holding the node's underlay address, as the kernel has it. */
export interface UnderlayState {
  name: string;
  index: number;
  mtu: number;
  /** Its global addresses with their prefix, sorted (`192.0.2.11/24`). */
  addresses: string[];
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
  underlay?: UnderlayState;
  conflicts: string[];
  failed: ActionFailure[];
  lastError?: string;
  lastResync?: string;
  counters: { resyncs: number; repairs: number; applies: number; requests: number; eventOverflows: number };
  /** Last apply converged: no failures and nothing left to do. */
  converged: boolean;
}

const EMPTY: DesiredState = { routes: [], neighbors: [], fdb: [] };
/** Our nexthop ids come from a range of their own ("W"), away from the low ids other tools pick. */
const NEXTHOP_ID_BASE = 0x57000000;
const NEXTHOP_ID_MAX = 0x57ffffff;
const NEXTHOPS_UNSUPPORTED = ["EOPNOTSUPP", "EAFNOSUPPORT", "EPROTONOSUPPORT"];

export class KernelDataplane {
  private readonly opts: Required<Omit<KernelDataplaneOptions, "logger" | "bulk">> & {
    bulk: BulkOptions;
  };
  /** Told when the underlay device (the one holding setUnderlayIP's address), its MTU or addresses change. */
  onUnderlay: ((u: UnderlayState | undefined) => void) | undefined;
  private underlayIP: string | undefined;
  private underlay: UnderlayState | undefined;
  private underlayTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger | undefined;
  private rtnl: Rtnl | undefined;
  private bulk: BulkSender | undefined;
  private sub: Subscription | undefined;
  private want: DesiredIndex = indexDesired(EMPTY);
  /** Set when the desired state is a live DesiredSource (a DesiredTracker). */
  private source: DesiredSource | undefined;
  /** Keys that may be out of sync: desired changes and drift seen in events. All else is in sync. */
  private dirty: DesiredChanges = emptyChanges();
  /** Route keys wanted but held by foreign routes, with the note for status. */
  private conflicts = new Map<string, string>();
  private have: ObservedState = emptyObserved();
  private readonly names = new Map<number, string>();
  private readonly indexes = new Map<string, number>();
  private managed: Set<string>;
  private readonly ops = new Serial();
  /** Applies of the desired state: every call made before one starts shares its result. */
  private readonly applies = new GroupCommit<void, ApplyResult>(
    async (batch) => {
      const result = await this.noteFailure(this.applyDesired());
      for (const w of batch) w.resolve(result);
    },
    { serial: this.ops },
  );
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
  private lastFailed: ActionFailure[] = [];
  private lastError: string | undefined;
  private lastResync: Date | undefined;
  private converged = false;
  private readonly nexthops: NexthopUse;
  private nextNexthopId = NEXTHOP_ID_BASE;
  private readonly counters = { resyncs: 0, repairs: 0, applies: 0, requests: 0, eventOverflows: 0 };

  constructor(opts: KernelDataplaneOptions = {}) {
    this.opts = {
      managedDevices: opts.managedDevices ?? [DEFAULT_VXLAN.name],
      resyncIntervalMs: opts.resyncIntervalMs ?? 60_000,
      repairDelayMs: opts.repairDelayMs ?? 100,
      families: opts.families ?? [AF_INET, AF_INET6],
      nexthops: opts.nexthops ?? true,
      bulk: opts.bulk ?? {},
    };
    this.log = opts.logger;
    this.managed = new Set(this.opts.managedDevices);
    this.nexthops = {
      enabled: this.opts.nexthops,
      allocate: (taken) => {
        let id = this.nextNexthopId;
        while (this.have.nexthops.has(id) || taken.has(id))
          id = id >= NEXTHOP_ID_MAX ? NEXTHOP_ID_BASE : id + 1;
        this.nextNexthopId = id >= NEXTHOP_ID_MAX ? NEXTHOP_ID_BASE : id + 1;
        return id;
      },
    };
  }

  /** Opens the sockets (in the current network namespace), subscribes to events, resyncs. */
  async start(): Promise<ApplyResult> {
    if (this.running) throw new Error("already started");
    this.rtnl = new Rtnl();
    // between batches, let the event socket catch up: our own changes come back as notifications,
    // and a socket that overflows aborts the process (see bulk.ts)
    this.bulk = new BulkSender({ ...this.opts.bulk, afterBatch: () => this.drainEvents() });
    this.sub = subscribe(
      [
        C.RTNLGRP_LINK,
        C.RTNLGRP_NEIGH,
        C.RTNLGRP_IPV4_IFADDR,
        C.RTNLGRP_IPV6_IFADDR,
        C.RTNLGRP_IPV4_ROUTE,
        C.RTNLGRP_IPV6_ROUTE,
        C.RTNLGRP_NEXTHOP,
      ],
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
      jittered(this.opts.resyncIntervalMs),
    );
    this.resyncTimer.unref();
    return this.resync();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const t of [this.repairTimer, this.deviceTimer, this.underlayTimer]) if (t) clearTimeout(t);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.repairTimer = this.deviceTimer = this.resyncTimer = this.underlayTimer = undefined;
    await this.ops.idle();
    this.sub?.close();
    this.bulk?.close();
    this.rtnl?.close();
    this.sub = this.bulk = this.rtnl = undefined;
  }

  /**
   * Makes `desired` the target and converges to it. Calls made while one is being applied are
   * coalesced: the latest desired state wins.
   *
   * Only keys whose desired entry changed are diffed against the kernel. A DesiredState costs a
   * map lookup per entry to find them; a DesiredSource (DesiredTracker) says which keys changed,
   * so one changed intent costs only its own entries. A source stays the target (and is read
   * again at every repair and resync) until setDesired is called with something else.
   */
  setDesired(desired: DesiredState | DesiredSource): Promise<ApplyResult> {
    if (isSource(desired)) {
      if (this.source !== desired) {
        markDifference(this.want, desired.index, this.dirty);
        desired.takeChanges();
        this.source = desired;
        this.want = desired.index;
      }
    } else {
      const next = indexDesired(desired);
      markDifference(this.want, next, this.dirty);
      this.want = next;
      this.source = undefined;
    }
    for (const d of this.want.devices) this.managed.add(d);
    if (!this.running) return Promise.resolve(this.noop("desired"));
    return this.applies.submit();
  }

  private applyDesired(): Promise<ApplyResult> {
    for (const d of this.want.devices) this.managed.add(d);
    // a different device configuration may recreate the device: that needs the full path
    if (canonicalJson(this.want.vxlan ?? null) !== this.ensuredVxlan) return this.fullResync("desired");
    return this.converge("desired", false);
  }

  /**
   * The node's underlay address: the device holding it is watched (MTU, addresses) and reported
   * through onUnderlay and status(), with or without a VXLAN device.
   */
  setUnderlayIP(ip: string | undefined): void {
    if (ip === this.underlayIP) return;
    this.underlayIP = ip;
    this.scheduleUnderlayRefresh();
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
      ...(this.underlay ? { underlay: { ...this.underlay, addresses: [...this.underlay.addresses] } } : {}),
      conflicts: [...this.conflicts.values()],
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
    return this.ops.run(() => this.noteFailure(f()));
  }

  /** A failed operation is logged and kept for status; its caller still gets the error. */
  private async noteFailure<T>(op: Promise<T>): Promise<T> {
    try {
      return await op;
    } catch (err) {
      this.lastError = errorMessage(err);
      this.log?.error("dataplane operation failed", { error: this.lastError });
      throw err;
    }
  }

  private noop(reason: ApplyResult["reason"]): ApplyResult {
    return { reason, actions: 0, ok: 0, failed: [], conflicts: [], device: [], ms: 0 };
  }

  /**
   * Applies the difference between what we want and what we know the kernel holds: over every
   * key (`full`), or over the dirty keys only.
   */
  private async converge(
    reason: ApplyResult["reason"],
    full: boolean,
    device: string[] = [],
    t0 = performance.now(),
  ) {
    let plan: Plan;
    if (full) {
      this.source?.takeChanges();
      this.dirty = emptyChanges();
      plan = diff(this.want, this.have);
      this.conflicts = new Map(plan.conflictKeys.map((k, i) => [k, plan.conflicts[i]!]));
    } else {
      if (this.source) mergeChanges(this.dirty, this.source.takeChanges());
      const keys = this.dirty;
      this.dirty = emptyChanges();
      const kp = diffKeys(this.want, this.have, keys);
      for (const k of kp.clear) this.conflicts.delete(k);
      for (const [i, k] of kp.conflictKeys.entries()) this.conflicts.set(k, kp.conflicts[i]!);
      plan = kp;
    }
    const res = await applyActions(
      this.bulk!,
      plan.actions,
      (d) => this.indexes.get(d),
      this.have,
      this.nexthops,
    );
    // a failed key stays dirty: the next converge tries it again
    for (const a of res.failedActions) markAction(this.dirty, a);
    if (this.nexthops.enabled && res.nexthopErrors.some((c) => NEXTHOPS_UNSUPPORTED.includes(c))) {
      this.nexthops.enabled = false;
      this.log?.warn("this kernel has no nexthop objects; routes carry their gateways");
      this.scheduleRepair();
    }
    if (this.have.unusedNexthops.size) await collectNexthops(this.bulk!, this.have);
    this.counters.applies++;
    this.counters.requests += plan.actions.length;
    this.lastFailed = res.failed;
    this.converged = res.failed.length === 0;
    const out: ApplyResult = {
      reason,
      actions: plan.actions.length,
      ok: res.ok,
      failed: res.failed,
      conflicts: [...this.conflicts.values()],
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
      const cfg = this.want.vxlan;
      if (cfg) {
        const r = await ensureVxlan(rtnl, cfg);
        device.push(...r.changes);
        this.vxlan = { name: cfg.name, index: r.link.index, underlay: r.underlay, mtu: r.link.mtu };
        if (r.changes.length) this.log?.info("vxlan device", { changes: r.changes });
      } else {
        this.vxlan = undefined;
      }
      this.ensuredVxlan = canonicalJson(cfg ?? null);

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
      const nexthops = await rtnl.nexthops();
      this.have = buildObserved(routes, neighbors, fdb, this.names, this.managed, nexthops);
      await this.refreshUnderlay(links);
    } catch (err) {
      this.eventBuffer = undefined;
      this.lastError = errorMessage(err);
      throw err;
    }
    const buffered = this.eventBuffer;
    this.eventBuffer = undefined;
    for (const m of buffered) this.handleEvent(m, true);
    this.counters.resyncs++;
    this.lastResync = new Date();
    this.lastError = undefined;
    return this.converge(reason, true, device, t0);
  }

  /** Someone touched our device: make it right; a full resync if it was down or recreated. */
  private async deviceCheck(): Promise<ApplyResult> {
    const cfg = this.want.vxlan;
    if (this.deviceDisturbed || !cfg || !this.vxlan) return this.fullResync("repair");
    const rtnl = this.rtnl!;
    const link = await rtnl.link(cfg.name);
    const plan = planVxlan(cfg, link, this.vxlan.underlay);
    const underlay = await rtnl.link(this.vxlan.underlay.name);
    const addrs = link ? (await rtnl.addresses()).filter((a) => a.index === link.index) : [];
    const ap = planAddresses(cfg.addresses, addrs);
    const sameUnderlay =
      underlay?.index === this.vxlan.underlay.index && underlay.mtu === this.vxlan.underlay.mtu;
    if (
      plan.op === "none" &&
      link?.index === this.vxlan.index &&
      sameUnderlay &&
      !ap.add.length &&
      !ap.del.length
    ) {
      return this.noop("repair");
    }
    return this.fullResync("repair");
  }

  /** Looks up the device holding the underlay address again (its MTU and addresses); `links` if dumped already. */
  private async refreshUnderlay(links?: Array<{ index: number; name: string; mtu?: number }>): Promise<void> {
    const rtnl = this.rtnl;
    const ip = this.underlayIP;
    let next: UnderlayState | undefined;
    if (rtnl && ip) {
      const addrs = await rtnl.addresses();
      const holder = addrs.find((a) => a.ip === ip);
      if (holder) {
        const link = (links ?? (await rtnl.links())).find((l) => l.index === holder.index);
        if (link) {
          next = {
            name: link.name,
            index: link.index,
            mtu: link.mtu ?? 1500,
            addresses: addrs
              .filter((a) => a.index === link.index && a.scope === 0)
              .map((a) => a.cidr)
              .sort(),
          };
        }
      }
    }
    if (JSON.stringify(next) === JSON.stringify(this.underlay)) return;
    this.underlay = next;
    this.log?.info("underlay", next ? { ...next } : { missing: ip ?? "no underlay address known" });
    this.onUnderlay?.(next);
  }

  private scheduleUnderlayRefresh(): void {
    if (this.underlayTimer || !this.running) return;
    this.underlayTimer = setTimeout(() => {
      this.underlayTimer = undefined;
      void this.enqueue(() => this.refreshUnderlay()).catch(() => undefined);
    }, this.opts.repairDelayMs);
  }

  private scheduleRepair(): void {
    if (this.repairTimer || !this.running) return;
    this.repairTimer = setTimeout(() => {
      this.repairTimer = undefined;
      this.counters.repairs++;
      void this.enqueue(() => this.converge("repair", false)).catch(() => undefined);
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
        case C.RTM_DELROUTE:
          this.onRoute(m);
          return;
        case C.RTM_NEWNEIGH:
        case C.RTM_DELNEIGH:
          this.onNeighbor(m);
          return;
        case C.RTM_NEWNEXTHOP:
        case C.RTM_DELNEXTHOP:
          this.onNexthop(m, replay);
          return;
        case C.RTM_NEWLINK:
        case C.RTM_DELLINK:
          this.onLink(m, replay);
          return;
        case C.RTM_NEWADDR:
        case C.RTM_DELADDR:
          this.onAddress(m, replay);
          return;
      }
    } catch (err) {
      this.log?.warn("undecodable netlink event", { type: m.type, error: String(err) });
    }
  }

  private onRoute(m: RawMessage): void {
    const c = classifyRoute(decodeRoute(m.body), this.names, this.have.nexthops);
    if (!c) return;
    const added = m.type === C.RTM_NEWROUTE;
    if (c.owned) {
      if (added) {
        observeRoute(this.have, c.key, c.entry);
        // ours replaced an identical foreign route (taken over): that one is gone
        this.have.foreignRoutes.delete(c.key);
        this.have.foreignEntries.delete(c.key);
      } else forgetRoute(this.have, c.key);
    } else if (added) {
      this.have.foreignRoutes.add(c.key);
      this.have.foreignEntries.set(c.key, c.entry);
      forgetRoute(this.have, c.key); // ours was replaced by someone else's
    } else {
      this.have.foreignRoutes.delete(c.key);
      this.have.foreignEntries.delete(c.key);
    }
    // a foreign route coming or going in a wanted slot changes the conflicts: look again
    if (!routeInSync(this.want, this.have, c.key) || (!c.owned && this.want.routes.has(c.key))) {
      this.dirty.routes.add(c.key);
      this.scheduleRepair();
    }
  }

  private onNeighbor(m: RawMessage): void {
    const n = decodeNeighbor(m.body);
    const added = m.type === C.RTM_NEWNEIGH;
    if (n.bridge) {
      const c = classifyFdb(n, this.names, this.managed);
      if (!c) return;
      if (added) observeFdb(this.have, c.entry);
      else forgetFdb(this.have, c.entry);
      if (!fdbRemoteInSync(this.want, c.entry, added)) {
        this.dirty.fdb.add(fdbMacKey(c.entry.device, c.entry.mac));
        this.scheduleRepair();
      }
      return;
    }
    const c = classifyNeighbor(n, this.names, this.managed);
    if (!c) return;
    if (added) this.have.neighbors.set(c.key, c.entry);
    else this.have.neighbors.delete(c.key);
    if (!neighborInSync(this.want, this.have, c.key)) {
      this.dirty.neighbors.add(c.key);
      this.scheduleRepair();
    }
  }

  private onNexthop(m: RawMessage, replay: boolean): void {
    const n = classifyNexthop(decodeNexthop(m.body), this.names);
    const old = this.have.nexthops.get(n.id);
    const used = (this.have.nexthopRefs.get(n.id) ?? 0) > 0;
    const deleted = m.type === C.RTM_DELNEXTHOP;
    if (deleted) forgetNexthop(this.have, n.id);
    else observeNexthop(this.have, n);
    // our routes on a nexthop that was deleted went with it, silently; on one that was changed,
    // they now lead elsewhere: both need the full path
    const changed =
      deleted ||
      old?.gateway !== n.gateway ||
      old?.device !== n.device ||
      old?.onlink !== n.onlink ||
      !n.owned;
    if (!replay && old?.owned && used && changed) this.scheduleDeviceCheck(true);
  }

  private onLink(m: RawMessage, replay: boolean): void {
    const l = decodeLink(m.body);
    const deleted = m.type === C.RTM_DELLINK;
    this.learnLinkName(l.index, l.name, deleted);
    const u = this.underlay;
    if (!replay && u && l.index === u.index && (l.mtu !== u.mtu || deleted || l.name !== u.name))
      this.scheduleUnderlayRefresh();
    const v = this.vxlan;
    if (replay || !v) return;
    if (l.index === v.index || l.name === v.name) {
      const gone = deleted || !l.up || l.index !== v.index;
      if (gone) this.scheduleDeviceCheck(true);
      else if (l.mtu !== v.mtu || (this.want.vxlan?.mac && l.mac !== this.want.vxlan.mac)) {
        this.scheduleDeviceCheck(false);
      }
    } else if (l.index === v.underlay.index && (l.mtu !== v.underlay.mtu || deleted)) {
      this.scheduleDeviceCheck(false);
    }
  }

  /** Keeps the index <-> name maps current through renames and deletions. */
  private learnLinkName(index: number, name: string, deleted: boolean): void {
    const old = this.names.get(index);
    if (deleted) {
      this.names.delete(index);
      if (old !== undefined && this.indexes.get(old) === index) this.indexes.delete(old);
      return;
    }
    if (old !== undefined && old !== name && this.indexes.get(old) === index) this.indexes.delete(old);
    this.names.set(index, name);
    this.indexes.set(name, index);
  }

  private onAddress(m: RawMessage, replay: boolean): void {
    if (replay) return;
    const a = decodeAddress(m.body);
    if (a.scope !== 0) return;
    // the underlay's addresses are its subnets (CrossSubnet); a missing one may just have come
    if (this.underlayIP && (!this.underlay || a.index === this.underlay.index))
      this.scheduleUnderlayRefresh();
    const v = this.vxlan;
    if (!v || a.index !== v.index) return;
    const want = this.want.vxlan?.addresses ?? [];
    const added = m.type === C.RTM_NEWADDR;
    if (added !== want.includes(a.cidr)) this.scheduleDeviceCheck(false);
  }
}

function isSource(d: DesiredState | DesiredSource): d is DesiredSource {
  return typeof (d as DesiredSource).takeChanges === "function";
}

function mergeChanges(into: DesiredChanges, from: DesiredChanges): void {
  for (const k of from.routes) into.routes.add(k);
  for (const k of from.neighbors) into.neighbors.add(k);
  for (const k of from.fdb) into.fdb.add(k);
}

function markAction(into: DesiredChanges, a: Action): void {
  if (a.kind === "route") into.routes.add(routeKey(a.entry.dst, a.entry.metric));
  else if (a.kind === "neighbor") into.neighbors.add(neighborKey(a.entry.device, a.entry.ip));
  else into.fdb.add(fdbMacKey(a.entry.device, a.entry.mac));
}
