import { existsSync } from "node:fs";
import {
  ANNOTATIONS,
  API_VERSION,
  type IPAMBlock,
  type IPPool,
  type LabelSelector,
  type NodeNetworkStatus,
  type NodeNetworkStatusStatus,
  POOL_DEFAULTS,
  type RouteIntent,
  withPoolDefaults,
} from "../api/index.js";
import type { Store } from "../datastore/index.js";
import {
  errorMessage,
  jittered,
  type Logger,
  matchesSelector,
  Serial,
  SerialDebounce,
} from "../lib/index.js";
import {
  filtered,
  generationChanged,
  type Informer,
  type InformerCache,
  labelsChanged,
  onEvents,
  or,
  type Runnable,
  resync,
} from "../runtime/index.js";
import type { ApplyResult, KernelDataplane, UnderlayState } from "./dataplane/kernel.js";
import { DesiredTracker } from "./dataplane/tracker.js";
import { natPlan } from "./nat/rules.js";
import type { NatTable } from "./nat/table.js";
import { type KernelFeatures, nodeStatus, statusFingerprint } from "./status.js";

export interface NodeAgentOptions {
  node: string;
  store: Store;
  /** The process's informers: the agent reads RouteIntents, IPPools and IPAMBlocks from it. */
  cache: InformerCache;
  dataplane: KernelDataplane;
  logger: Logger;
  /** Debounce between a watch event and recomputing the desired state (default 20 ms). */
  syncDelayMs?: number;
  /** Status is rewritten at least this often even when nothing changed (default 60 s). */
  statusIntervalMs?: number;
  kernel?: KernelFeatures;
  /** Outgoing NAT (natOutgoing pools); without it the agent leaves NAT alone. */
  nat?: NatTable;
  /** MTU of new pods; unset: derived from the underlay (the VXLAN device's MTU when there is one). */
  podMTU?: number;
  /** Apply only the intents of nodes with these labels (one cluster network among several). */
  nodeSelector?: LabelSelector;
  /** Adds more to the status being written (the BGP manager's sessions and conditions). */
  decorateStatus?: (
    status: NodeNetworkStatusStatus,
    generation: number | undefined,
  ) => NodeNetworkStatusStatus;
}

/**
 * Watches every RouteIntent, the pools and the blocks, and keeps this node's kernel equal to what
 * the other nodes' intents say (plus blackholes for its own blocks). Everything it knows comes
 * from the watches, so a restart converges to the same state without flushing anything.
 */
export class NodeAgent implements Runnable {
  readonly name = "node-agent";
  readonly intents: Informer<RouteIntent>;
  readonly pools: Informer<IPPool>;
  readonly blocks: Informer<IPAMBlock>;
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly syncs: SerialDebounce;
  private lastStatus = "";
  private written: NodeNetworkStatus | undefined;
  private readonly tracker: DesiredTracker;
  private lastStatusAt = 0;
  private problems: string[] = [];
  private appliedIntents: Record<string, number> = {};
  /** Status writes one after another: two in flight could land in the opposite order. */
  private readonly statusWrites = new Serial();
  private readonly inScope: (i: RouteIntent) => boolean;
  private started = false;
  /** How often an unchanged status is rewritten anyway (a heartbeat), spread per process. */
  private readonly statusIntervalMs: number;
  private firstApply: ApplyResult | undefined;
  private readonly kernel: KernelFeatures;
  private underlay: UnderlayState | undefined;

  constructor(private readonly opts: NodeAgentOptions) {
    this.syncs = new SerialDebounce(
      opts.syncDelayMs ?? 20,
      () => this.sync(),
      (err) => opts.logger.error("sync failed", { error: errorMessage(err) }),
    );
    this.intents = opts.cache.kind("RouteIntent");
    this.pools = opts.cache.kind("IPPool");
    this.blocks = opts.cache.kind("IPAMBlock");
    this.kernel = opts.kernel ?? { ipip: existsSync("/sys/module/ipip") };
    this.statusIntervalMs = jittered(opts.statusIntervalMs ?? 60_000);
    this.tracker = new DesiredTracker({ node: opts.node, ipipSupported: this.kernel.ipip });
    // The underlay's subnets decide CrossSubnet paths; its MTU is reported and given to new pods.
    opts.dataplane.onUnderlay = (u) => {
      this.underlay = u;
      this.tracker.setOptions({
        ipipSupported: this.kernel.ipip,
        ...(u ? { underlaySubnets: u.addresses } : {}),
      });
      if (this.started) this.syncs.schedule();
    };
    // One intent at a time: a change costs what it touches, not a recomputation of every node.
    this.inScope = (i: RouteIntent) => matchesSelector(opts.nodeSelector, i.metadata.labels);
    const upsert = (i: RouteIntent) =>
      this.inScope(i) ? this.tracker.upsertIntent(i.spec) : this.tracker.removeIntent(i.spec.node);
    // The controller's status writes (Ready, observedGeneration) change neither routes nor scope.
    const intentChanged = or(generationChanged, labelsChanged);
    this.intents.on(
      filtered<RouteIntent>(or(resync, intentChanged), {
        add: upsert,
        update: (_o, i) => upsert(i),
        delete: (i) => this.tracker.removeIntent(i.spec.node),
      }),
    );
    // Before start() has the caches synced, events only fill them; start()'s own sync reads them.
    const changed = () => {
      if (this.started) this.syncs.schedule();
    };
    this.intents.on(onEvents(intentChanged, changed));
    // Status writes (the controller's conditions, pool usage) leave the generation as it was.
    this.pools.on(onEvents(generationChanged, changed));
    this.blocks.on(onEvents(generationChanged, changed));
  }

  get ready(): boolean {
    return this.firstApply !== undefined && this.intents.hasSynced() && this.blocks.hasSynced();
  }

  /**
   * The kernel is touched only once the caches hold the whole desired state: a dataplane started
   * with an empty target would delete every owned entry and drop traffic until the watches
   * caught up (and forever, with the apiserver down).
   */
  async start(): Promise<void> {
    await Promise.all([this.intents.waitForSync(), this.pools.waitForSync(), this.blocks.waitForSync()]);
    this.opts.dataplane.setUnderlayIP(this.intents.get(this.opts.node)?.spec.underlayIP);
    await this.opts.dataplane.setDesired(this.desired());
    await this.opts.dataplane.start();
    this.opts.nat?.start();
    this.started = true;
    await this.syncs.runNow();
    this.statusTimer = setInterval(() => void this.writeStatus().catch(() => undefined), 5_000);
    this.statusTimer.unref();
  }

  /** The informers are the cache's: whoever started them stops them. */
  async stop(): Promise<void> {
    if (this.statusTimer) clearInterval(this.statusTimer);
    await this.syncs.stop();
    await this.opts.nat?.stop();
    await this.opts.dataplane.stop();
  }

  /** The tracker, brought up to date with this node's own blocks (blackholes). */
  private desired(): DesiredTracker {
    const { node } = this.opts;
    // The VTEP entries of nodes flanneld runs are never deleted, planned or not (any scope).
    this.tracker.setKept(
      this.intents
        .list()
        .filter((i) => i.metadata.labels?.[ANNOTATIONS.flannelLease] !== undefined)
        .map((i) => i.spec),
    );
    this.tracker.setOwnBlocks(
      this.blocks
        .list()
        .filter((b) => b.spec.affinity === node)
        .map((b) => b.spec.cidr),
    );
    return this.tracker;
  }

  /**
   * MTU for new pods: --pod-mtu, else the VXLAN device's (pods' packets may enter the tunnel), else
   * the underlay's; 1450 (a 1500 underlay minus VXLAN) until the underlay is known.
   */
  podMTU(): number {
    if (this.opts.podMTU) return this.opts.podMTU;
    return this.opts.dataplane.status().vxlan?.mtu ?? this.underlay?.mtu ?? 1450;
  }

  /** One pass: desired state from the caches, applied to the kernel, then status. */
  private async sync(): Promise<void> {
    const { node } = this.opts;
    const intents = this.intents.list();
    this.opts.dataplane.setUnderlayIP(this.intents.get(node)?.spec.underlayIP);
    const tracker = this.desired();
    const ownPools = new Set(
      this.blocks
        .list()
        .filter((b) => b.spec.affinity === node)
        .map((b) => b.spec.pool),
    );
    // NAT first and apart: its table is independent of routes, and a failure is reported, not fatal
    await this.opts.nat?.set(natPlan(this.pools.list(), ownPools));
    const result = await this.opts.dataplane.setDesired(tracker);
    const problems = tracker.problems();
    this.firstApply ??= result;
    this.problems = problems;
    this.appliedIntents = Object.fromEntries(
      intents
        .filter((i) => i.spec.node !== node && this.inScope(i))
        .map((i) => [i.metadata.name, i.metadata.generation ?? 0]),
    );
    if (result.actions > 0 || result.failed.length > 0) {
      this.opts.logger.info("applied", {
        actions: result.actions,
        ok: result.ok,
        failed: result.failed.length,
        ms: Math.round(result.ms * 10) / 10,
      });
    }
    for (const p of problems) this.opts.logger.warn("intent not applied", { problem: p });
    // The kernel is done; a status the apiserver refuses now is retried by the status timer.
    await this.writeStatus().catch((err: unknown) =>
      this.opts.logger.error("could not write NodeNetworkStatus", {
        error: errorMessage(err),
      }),
    );
  }

  /** Server-side apply of the object (its spec names the node); idempotent, so also after restarts. */
  private ensureStatusObject(): Promise<NodeNetworkStatus> {
    const { node, store } = this.opts;
    return store.apply("NodeNetworkStatus", {
      apiVersion: API_VERSION,
      kind: "NodeNetworkStatus",
      metadata: { name: node },
      spec: { node },
    });
  }

  /**
   * Updates this node's NodeNetworkStatus from the last write it made (no read per sync: the
   * agent syncs on every RouteIntent change in the cluster); skips writes that would say nothing new.
   */
  writeStatus(): Promise<void> {
    return this.statusWrites.run(() => this.writeStatusNow());
  }

  private async writeStatusNow(): Promise<void> {
    const { node, store } = this.opts;
    // Read once per process, so conditions keep their transition times across agent restarts.
    if (!this.written) this.written = await this.ensureStatusObject();
    const pools = this.pools.list();
    const blocks = this.blocks.list().filter((b) => b.spec.affinity === node);
    const poolOf = new Map(pools.map((p) => [p.metadata.name, withPoolDefaults(p)]));
    // a block whose pool is not (or no longer) in the cache counts as the default encapsulation
    const encaps = new Set(
      blocks.map((b) => poolOf.get(b.spec.pool)?.spec.encapsulation ?? POOL_DEFAULTS.encapsulation),
    );
    const anyVxlan = this.intents.list().some((i) => i.spec.encapsulation === "VXLAN") || encaps.has("VXLAN");
    const dp = this.opts.dataplane.status();
    const nat = this.opts.nat?.status();
    const base = nodeStatus({
      previous: this.written?.status,
      generation: this.written?.metadata.generation,
      dataplane: dp,
      appliedIntents: this.appliedIntents,
      peerPaths: this.tracker.peerPaths(),
      podMTU: this.podMTU(),
      ...(nat ? { nat } : {}),
      problems: this.problems,
      vxlanWanted: anyVxlan,
      kernel: this.kernel,
      ipipWanted: encaps.has("IPIP") || pools.some((p) => p.spec.encapsulation === "IPIP"),
    });
    const status = this.opts.decorateStatus?.(base, this.written?.metadata.generation) ?? base;
    const fp = statusFingerprint(status);
    if (fp === this.lastStatus && Date.now() - this.lastStatusAt < this.statusIntervalMs) return;
    // The agent owns the whole status (field manager weft-agent): what it leaves out is removed.
    this.written = await store.applyStatus("NodeNetworkStatus", node, status);
    this.lastStatus = fp;
    this.lastStatusAt = Date.now();
  }
}
