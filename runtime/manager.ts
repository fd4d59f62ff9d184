import type * as k8s from "@kubernetes/client-node";
import { createLogger, errorMessage, type Logger } from "../lib/index.js";
import type { HealthServer } from "./health.js";
import { type LeaderElectionOptions, LeaderElector } from "./leaderelection.js";

/** A part of a program the Manager starts and stops: a controller, a periodic task, a server. */
export interface Runnable {
  readonly name: string;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/** What the Manager needs of an informer or an InformerCache. */
export interface CacheLike {
  start(): void;
  waitForSync(): Promise<void>;
  hasSynced(): boolean;
  stop(): Promise<void>;
}

export interface ManagerOptions {
  logger?: Logger;
  /** Readiness checks go here (runtime/health.ts). */
  health?: HealthServer;
  /** Without it every part runs at once; with it, leader-elected parts run only on the leader. */
  leaderElection?: Omit<
    LeaderElectionOptions,
    "onStartedLeading" | "onStoppedLeading" | "onNewLeader" | "logger"
  > & {
    kc: k8s.KubeConfig;
  };
  /** Leadership lost while not stopping. Default: log and exit 1, so the replica restarts clean. */
  onLostLeadership?: () => void;
}

export interface AddOptions {
  /** Runs only while this process leads (default true; always true without leader election). */
  leaderElected?: boolean;
}

interface Group {
  caches: CacheLike[];
  parts: Runnable[];
}

/**
 * Starts a program's parts in controller-runtime's order: caches first (and waits until they have
 * listed), then the parts one after the other in the order they were added; leader-elected caches
 * and parts only once this process leads. Readiness: every cache that should be running has
 * synced (a standby replica is ready by definition: it only waits for the lease, and a rolling
 * update must not stall on it). Stop: parts, then caches, then the lease is given back.
 */
export class Manager {
  private readonly log: Logger;
  private readonly always: Group = { caches: [], parts: [] };
  private readonly leader: Group = { caches: [], parts: [] };
  private readonly started: Runnable[] = [];
  private readonly startedCaches: CacheLike[] = [];
  private elector: LeaderElector | undefined;
  private leading = false;
  private stopping = false;

  constructor(private readonly opts: ManagerOptions = {}) {
    this.log = opts.logger ?? createLogger("manager");
    opts.health?.addReadyCheck("informers", () => this.cachesReady());
  }

  /** An informer or informer cache, started before any part. */
  addCache(cache: CacheLike, opts: AddOptions = {}): this {
    this.group(opts).caches.push(cache);
    return this;
  }

  add(part: Runnable, opts: AddOptions = {}): this {
    this.group(opts).parts.push(part);
    return this;
  }

  /** Whether leader-elected parts run here now. */
  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Starts what runs everywhere, then campaigns (with leader election) and resolves when
   * leadership ends; without leader election it resolves once every part has started.
   */
  async start(): Promise<void> {
    await this.startGroup(this.always);
    const le = this.opts.leaderElection;
    if (!le) {
      await this.lead();
      return;
    }
    const { kc, ...election } = le;
    this.elector = new LeaderElector(kc, {
      ...election,
      logger: this.log,
      // Not awaited: the lease must keep being renewed while the caches list and the parts start.
      onStartedLeading: () => {
        this.lead().catch((err: unknown) =>
          this.log.error("starting the leader's parts failed", {
            error: errorMessage(err),
          }),
        );
      },
      onStoppedLeading: () => {
        if (this.stopping) return;
        (this.opts.onLostLeadership ?? (() => this.exitOnLoss()))();
      },
      onNewLeader: (id) => this.log.info("leader is", { leader: id }),
    });
    await this.elector.run();
  }

  /**
   * Parts (in parallel), then caches, then the lease. A step that fails is logged and the next
   * still runs; stop() then rejects, naming the steps that failed.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    const failed: string[] = [];
    const step = async (name: string, run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (err) {
        failed.push(name);
        this.log.error("stopping failed", {
          step: name,
          error: errorMessage(err),
        });
      }
    };
    await step("parts", () => Promise.all(this.started.map(async (p) => p.stop())));
    await step("informers", () => Promise.all(this.startedCaches.map((c) => c.stop())));
    const elector = this.elector;
    if (elector) await step("leader lease", () => elector.stop());
    if (failed.length) throw new Error(`stopping failed: ${failed.join(", ")}`);
  }

  private group(opts: AddOptions): Group {
    return opts.leaderElected === false ? this.always : this.leader;
  }

  private async lead(): Promise<void> {
    this.leading = true;
    await this.startGroup(this.leader);
    if (!this.stopping) this.log.info("controllers running", { parts: this.leader.parts.map((p) => p.name) });
  }

  private async startGroup(group: Group): Promise<void> {
    for (const c of group.caches) {
      c.start();
      this.startedCaches.push(c);
    }
    await Promise.all(group.caches.map((c) => c.waitForSync()));
    for (const p of group.parts) {
      if (this.stopping) return;
      // Listed before it starts: a stop() meanwhile stops it too (a part's stop copes with that).
      this.started.push(p);
      await p.start();
    }
  }

  private cachesReady(): true | string {
    const due = [...this.always.caches, ...(this.leading ? this.leader.caches : [])];
    return due.every((c) => c.hasSynced()) || "caches not synced";
  }

  private exitOnLoss(): void {
    this.log.error("lost leadership, exiting");
    process.exit(1);
  }
}
