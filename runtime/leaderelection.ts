import { performance } from "node:perf_hooks";
import * as k8s from "@kubernetes/client-node";
import { createLogger, type Logger } from "../lib/index.js";
import { isLeader as leaderGauge } from "./metrics.js";

export interface LeaderElectionOptions {
  namespace: string;
  /** Lease name, e.g. "weft-controller". */
  name: string;
  /** Unique per replica, e.g. pod name + pid. */
  identity: string;
  /** How long others wait after the last renewal they saw before taking over. Default 15 s. */
  leaseDurationMs?: number;
  /** The leader gives up acting if it could not renew for this long; must be < leaseDurationMs. Default 10 s. */
  renewDeadlineMs?: number;
  /** Time between attempts to acquire or renew. Default 2 s. */
  retryPeriodMs?: number;
  /** Called on becoming leader; signal aborts the moment leadership is lost or given up. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called once when leadership ends (lost, or released by stop()). */
  onStoppedLeading?: () => void;
  /** Called when the holder seen in the lease changes. */
  onNewLeader?: (identity: string) => void;
  logger?: Logger;
}

interface Observed {
  holder: string;
  resourceVersion: string;
  durationMs: number;
  /** Local monotonic time at which this record was first seen. */
  at: number;
}

const now = () => performance.now();

/**
 * Leader election on a coordination.k8s.io/v1 Lease, client-go's algorithm. Safety does not rest
 * on clocks agreeing between machines: a follower measures the lease duration on its own clock
 * from when it first saw the current record, and the leader stops acting renewDeadline after the
 * start of its last successful renewal, which is earlier than any follower can take over.
 */
export class LeaderElector {
  private readonly api: k8s.CoordinationV1Api;
  private readonly log: Logger;
  private readonly leaseMs: number;
  private readonly deadlineMs: number;
  private readonly retryMs: number;
  private observed: Observed | undefined;
  private leading = false;
  /** Monotonic start of the last renewal that succeeded. */
  private renewedAt = 0;
  private abort: AbortController | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  /** Ends an attempt in flight (stop() while the apiserver does not answer). */
  private interrupt: (() => void) | undefined;
  private running: Promise<void> | undefined;

  constructor(
    kc: k8s.KubeConfig,
    private readonly opts: LeaderElectionOptions,
  ) {
    this.api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.log = opts.logger ?? createLogger("leader-election");
    this.leaseMs = opts.leaseDurationMs ?? 15_000;
    this.deadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryMs = opts.retryPeriodMs ?? 2_000;
    if (!(this.deadlineMs < this.leaseMs))
      throw new Error("renewDeadlineMs must be less than leaseDurationMs");
    if (!(this.retryMs < this.deadlineMs)) throw new Error("retryPeriodMs must be less than renewDeadlineMs");
  }

  /** True only while the lease is held and was renewed within renewDeadline. */
  isLeader(): boolean {
    return this.leading && now() - this.renewedAt < this.deadlineMs;
  }

  /** Campaigns until leader, leads until the lease is lost or stop() is called, then returns. */
  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  /** Steps down: stops renewing and, if leading, releases the lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.interrupt?.();
    await this.running;
    if (this.leading) {
      this.lose("stopped");
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.release(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.deadlineMs);
        }),
      ]);
      clearTimeout(timer);
    }
  }

  private async loop(): Promise<void> {
    // Campaign.
    while (!this.stopped) {
      const started = now();
      if (await this.tryAcquireOrRenew(started)) {
        this.leading = true;
        this.renewedAt = started;
        this.armDeadline();
        break;
      }
      await this.pause(this.retryMs);
    }
    if (this.stopped) return;
    leaderGauge.set({ lease: this.opts.name }, 1);
    this.log.info("became leader", { lease: this.opts.name, identity: this.opts.identity });
    this.abort = new AbortController();
    try {
      await this.opts.onStartedLeading(this.abort.signal);
    } catch (err) {
      this.log.error("onStartedLeading failed", { error: String(err) });
    }
    // Renew.
    while (!this.stopped && this.leading) {
      await this.pause(this.retryMs);
      if (this.stopped || !this.leading) break;
      const started = now();
      if (await this.tryAcquireOrRenew(started)) {
        if (!this.leading) break; // the deadline passed while the request was in flight
        this.renewedAt = started;
        this.armDeadline();
      } else if (!this.isLeader()) {
        this.lose("failed to renew the lease within the renew deadline");
      }
    }
  }

  /** Leadership ends at renewedAt + renewDeadline unless renewed, even if an API call hangs. */
  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    const left = this.renewedAt + this.deadlineMs - now();
    this.deadlineTimer = setTimeout(
      () => {
        if (!this.leading) return;
        if (this.isLeader()) return this.armDeadline(); // the timer fired a hair early
        this.lose("failed to renew the lease within the renew deadline");
        this.wake?.();
      },
      Math.max(0, left),
    );
  }

  private lose(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    leaderGauge.set({ lease: this.opts.name }, 0);
    this.log.warn("leadership ended", { lease: this.opts.name, identity: this.opts.identity, why });
    this.abort?.abort(new Error(`leadership lost: ${why}`));
    try {
      this.opts.onStoppedLeading?.();
    } catch (err) {
      this.log.error("onStoppedLeading failed", { error: String(err) });
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private spec(prev: k8s.V1LeaseSpec | undefined, t: Date): k8s.V1LeaseSpec {
    const mine = prev?.holderIdentity === this.opts.identity;
    return {
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: Math.ceil(this.leaseMs / 1000),
      acquireTime: mine && prev?.acquireTime ? prev.acquireTime : new k8s.V1MicroTime(t.getTime()),
      renewTime: new k8s.V1MicroTime(t.getTime()),
      leaseTransitions: mine ? (prev?.leaseTransitions ?? 0) : (prev?.leaseTransitions ?? 0) + (prev ? 1 : 0),
    };
  }

  /**
   * One attempt, bounded by renewDeadline: a request that hangs (apiserver unreachable) must not
   * keep the loop from noticing the loss or from stopping. A late success is harmless: it only
   * makes others wait longer.
   */
  private async tryAcquireOrRenew(started: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => {
        this.log.warn("lease request timed out", { lease: `${this.opts.namespace}/${this.opts.name}` });
        resolve(false);
      }, this.deadlineMs);
    });
    const stop = new Promise<boolean>((resolve) => {
      this.interrupt = () => resolve(false);
    });
    try {
      return await Promise.race([this.attempt(started), timeout, stop]);
    } finally {
      clearTimeout(timer);
      this.interrupt = undefined;
    }
  }

  private async attempt(started: number): Promise<boolean> {
    const { namespace, name, identity } = this.opts;
    try {
      let lease: k8s.V1Lease;
      try {
        lease = await this.api.readNamespacedLease({ name, namespace });
      } catch (err) {
        if (!(err instanceof k8s.ApiException && err.code === 404)) throw err;
        await this.api.createNamespacedLease({
          namespace,
          body: { metadata: { name, namespace }, spec: this.spec(undefined, new Date()) },
        });
        this.observe(identity, "", this.leaseMs, started);
        return true;
      }
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? "";
      const rv = lease.metadata?.resourceVersion ?? "";
      this.observe(holder, rv, (spec.leaseDurationSeconds ?? 0) * 1000 || this.leaseMs, now());
      const o = this.observed!;
      if (holder && holder !== identity) {
        // Someone else holds it: only possible for us if our lease ran out, so stop at once.
        if (this.leading) this.lose(`the lease is now held by ${holder}`);
        if (now() < o.at + o.durationMs) return false;
      }
      const updated = await this.api.replaceNamespacedLease({
        name,
        namespace,
        body: { ...lease, spec: this.spec(spec, new Date()) },
      });
      this.observe(identity, updated.metadata?.resourceVersion ?? "", this.leaseMs, started);
      return true;
    } catch (err) {
      const code = err instanceof k8s.ApiException ? err.code : undefined;
      // 409: another replica wrote first; that is the normal way to lose a race.
      if (code !== 409) {
        this.log.warn("lease request failed", {
          lease: `${namespace}/${name}`,
          error: code ? `HTTP ${code}` : String(err).split("\n")[0],
        });
      }
      return false;
    }
  }

  /** Remembers when the lease record last changed, on this process's clock. */
  private observe(holder: string, resourceVersion: string, durationMs: number, at: number): void {
    const o = this.observed;
    if (o && o.holder === holder && o.resourceVersion === resourceVersion) return;
    if (!o || o.holder !== holder) this.opts.onNewLeader?.(holder);
    this.observed = { holder, resourceVersion, durationMs, at };
  }

  /**
   * Hands the lease back: empty holder, so the next candidate need not wait for it to expire. A
   * renewal interrupted by stop() may still land after our read; that conflict is read again.
   */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.opts;
    for (let attempt = 1; ; attempt++) {
      try {
        const lease = await this.api.readNamespacedLease({ name, namespace });
        if (lease.spec?.holderIdentity !== identity) return;
        await this.api.replaceNamespacedLease({
          name,
          namespace,
          body: {
            ...lease,
            spec: {
              ...lease.spec,
              holderIdentity: "",
              leaseDurationSeconds: 1,
              renewTime: new k8s.V1MicroTime(Date.now()),
            },
          },
        });
        this.log.info("released the lease", { lease: `${namespace}/${name}` });
        return;
      } catch (err) {
        const conflict = err instanceof k8s.ApiException && err.code === 409;
        if (conflict && attempt < 5) continue;
        this.log.warn("could not release the lease; others take over when it expires", {
          error: conflict ? "HTTP 409 (kept changing)" : String(err).split("\n")[0],
        });
        return;
      }
    }
  }
}
