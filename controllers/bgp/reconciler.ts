import type * as k8s from "@kubernetes/client-node";
import type {
  BGPConfiguration,
  BGPConfigurationStatus,
  LabelSelector,
  NodeNetworkStatus,
  RouteReflectorStatus,
} from "../../api/index.js";
import {
  chooseReflectors,
  computeTopology,
  passwordProblem,
  reflectorCandidates,
  secretRefKey,
  topologyInputFrom,
} from "../../bgp/index.js";
import { NotFoundError } from "../../datastore/index.js";
import { createLogger, matchesSelector, mergeConditions, ownNamespace, sameValue } from "../../lib/index.js";
import {
  annotationsChanged,
  type Controller,
  ControllerBuilder,
  changed,
  generationChanged,
  labelsChanged,
  NamedSecrets,
  or,
  type ReconcileResult,
  type Reconciler,
  type Runnable,
} from "../../runtime/index.js";
import type { ControllerContext } from "../context.js";
import { desiredBgpStatus, referencedPasswords } from "./status.js";

const log = createLogger("bgp-status");
const KEY = "bgp";

export interface BgpStatusOptions {
  /**
   * Only BGPPeers and BGPConfigurations with these labels get status from this controller. A
   * controller scoped to a shard of nodes (--node-selector) reports only on the BGP objects
   * labelled for that shard, so that two controllers never fight over one status.
   */
  selector?: LabelSelector;
  /** Namespace of Secret references without one (default: the namespace Weft runs in, ownNamespace()). */
  secretNamespace?: string;
  /** Status is recomputed at least this often (default 60 s). */
  resyncMs?: number;
  /** Reflector timings (defaults in chooseReflectors). */
  notReadyGraceMs?: number;
  joiningDeadlineMs?: number;
}

/**
 * Chooses the automatic route reflectors and writes status on BGPPeers and the BGPConfiguration
 * from the same topology the agents compute, counting Established sessions from the nodes'
 * NodeNetworkStatus. The whole topology is one unit of work (any change can move every count),
 * debounced through a single work-queue key; only statuses that differ are written. The
 * reflector choice lives in BGPConfiguration status, so it is written by the same server-side
 * apply as the rest of that status (one field manager owning one status). The Secrets it checks
 * are watched by name, so a rotated or deleted password shows within a watch event.
 */
export function bgpStatusController(ctx: ControllerContext, opts: BgpStatusOptions = {}): Runnable {
  const { nodes, pools, bgpPeers, bgpConfigs, nodeStatuses } = ctx.informers;
  const all = () => KEY;
  let controller: Controller | undefined;
  const secrets = new NamedSecrets(ctx.kc, () => controller?.enqueue(KEY), log);
  controller = new ControllerBuilder("bgp-status", { workers: 1 })
    .watches(nodes, all, {
      predicate: or(
        labelsChanged,
        annotationsChanged,
        changed<k8s.V1Node>((n) => n.status?.addresses),
        // reflector choice: a node going NotReady or being deleted is replaced
        changed<k8s.V1Node>((n) => n.metadata?.deletionTimestamp),
        changed<k8s.V1Node>((n) => n.status?.conditions?.find((c) => c.type === "Ready")?.status),
      ),
    })
    // labels too: with a selector, a label added to a peer brings it into scope at once
    .watches(pools, all, { predicate: or(generationChanged, labelsChanged) })
    .watches(bgpPeers, all, { predicate: or(generationChanged, labelsChanged) })
    .watches(bgpConfigs, all, { predicate: or(generationChanged, labelsChanged) })
    .watches(nodeStatuses, all, {
      predicate: changed<NodeNetworkStatus>((s) => s.status?.bgpSessions?.map((x) => [x.peerIP, x.state])),
    })
    .complete(new BgpStatusReconciler(ctx, secrets, opts));
  controller.enqueue(KEY);
  const c = controller;
  return {
    name: c.name,
    start: () => c.start(),
    stop: async () => {
      await c.stop();
      await secrets.stop();
    },
  };
}

export class BgpStatusReconciler implements Reconciler {
  constructor(
    private readonly ctx: ControllerContext,
    private readonly secrets: NamedSecrets,
    private readonly opts: BgpStatusOptions = {},
  ) {}

  private inScope(labels: Record<string, string> | undefined): boolean {
    return !this.opts.selector || matchesSelector(this.opts.selector, labels ?? {});
  }

  /** Verdicts on the referenced passwords, from the Secrets watched by name; values are dropped here. */
  private async checkPasswords(
    refs: ReturnType<typeof referencedPasswords>,
  ): Promise<Map<string, string | undefined>> {
    const out = new Map<string, string | undefined>();
    const ns = this.opts.secretNamespace ?? ownNamespace();
    const secrets = this.secrets;
    await secrets.watchOnly(refs.map((r) => ({ namespace: r.namespace ?? ns, name: r.name })));
    for (const ref of refs) {
      const namespace = ref.namespace ?? ns;
      const found = secrets.lookup({ namespace, name: ref.name }, ref.key);
      out.set(
        secretRefKey(ref),
        found.state === "found"
          ? passwordProblem(found.value)
          : found.state === "missing-key"
            ? `the Secret has no key ${ref.key}`
            : found.state === "not-found"
              ? `Secret ${namespace}/${ref.name} not found`
              : `Secret ${namespace}/${ref.name} cannot be read`,
      );
    }
    return out;
  }

  async reconcile(): Promise<ReconcileResult | undefined> {
    const { nodes, pools, bgpPeers, bgpConfigs, nodeStatuses } = this.ctx.informers;
    const peers = bgpPeers.list();
    const config = bgpConfigs.get("default");
    const scopedPeers = peers.filter((p) => this.inScope(p.metadata.labels));
    const scopedConfig = config && this.inScope(config.metadata.labels) ? config : undefined;
    const passwords = await this.checkPasswords(referencedPasswords(scopedPeers, scopedConfig));
    const statuses = nodeStatuses.list();
    const objects = { nodes: nodes.list(), pools: pools.list(), peers };

    // Reflectors first: the topology everyone computes follows from the choice.
    let effective: BGPConfiguration | undefined = config;
    let reflectors:
      | { routeReflectors?: RouteReflectorStatus[]; problems: { field: string; message: string }[] }
      | undefined;
    let recheckMs: number | undefined;
    if (scopedConfig) {
      const candidates = reflectorCandidates({ ...objects, ...(config ? { config } : {}) });
      const current = computeTopology(topologyInputFrom({ ...objects, config: scopedConfig }));
      const choice = chooseReflectors({
        spec: scopedConfig.spec?.routeReflectors,
        nodes: candidates,
        current: scopedConfig.status?.routeReflectors,
        sessionsUp: (node) => sessionsUp(node, current, statuses, candidates),
        now: new Date(),
        ...(this.opts.notReadyGraceMs !== undefined ? { notReadyGraceMs: this.opts.notReadyGraceMs } : {}),
        ...(this.opts.joiningDeadlineMs !== undefined
          ? { joiningDeadlineMs: this.opts.joiningDeadlineMs }
          : {}),
      });
      for (const c of choice.changes) log.info("route reflectors", { change: c });
      reflectors = { routeReflectors: choice.reflectors, problems: choice.problems };
      effective = { ...scopedConfig, status: { ...scopedConfig.status, routeReflectors: choice.reflectors } };
      recheckMs = choice.changes.length > 0 ? 1000 : choice.recheckMs;
    }
    const desired = desiredBgpStatus({
      ...objects,
      ...(effective ? { config: effective } : {}),
      passwords,
      nodeStatuses: statuses,
      ...(reflectors ? { reflectors } : {}),
    });
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    for (const peer of scopedPeers) {
      const d = desired.peers.get(peer.metadata.name);
      if (d) await this.write("BGPPeer", peer.metadata.name, d, now);
    }
    if (scopedConfig && desired.config)
      await this.write("BGPConfiguration", scopedConfig.metadata.name, desired.config, now);
    const resync = this.opts.resyncMs ?? 60_000;
    return { requeueAfter: Math.min(resync, recheckMs ?? resync) };
  }

  private async write(
    kind: "BGPPeer" | "BGPConfiguration",
    name: string,
    d: {
      status: Omit<BGPConfigurationStatus, "conditions">;
      conditions: Parameters<typeof mergeConditions>[1];
    },
    now: string,
  ): Promise<void> {
    const ctx = this.ctx;
    const cur = kind === "BGPPeer" ? ctx.informers.bgpPeers.get(name) : ctx.informers.bgpConfigs.get(name);
    if (!cur) return;
    const conditions = mergeConditions(cur.status?.conditions, d.conditions, cur.metadata.generation, now);
    const next: BGPConfigurationStatus = { ...d.status, conditions };
    if (cur.metadata.generation !== undefined) next.observedGeneration = cur.metadata.generation;
    if (sameValue(next, cur.status)) return;
    const ready = conditions.find((c) => c.type === "Ready");
    log.info("status", {
      kind,
      name,
      ready: ready?.status,
      reason: ready?.reason,
      sessions: next.expectedSessions,
      established: next.establishedSessions,
    });
    try {
      // Server-side apply of the status alone: the spec stays owned by whoever applied it (GitOps).
      await ctx.store.applyStatus(kind, name, next);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
}

/**
 * Whether a joining reflector's sessions to the nodes that can answer are Established, from its
 * own NodeNetworkStatus (nodes that are NotReady, being deleted or unaddressed are not waited for).
 */
function sessionsUp(
  node: string,
  topology: ReturnType<typeof computeTopology>,
  statuses: readonly NodeNetworkStatus[],
  candidates: ReturnType<typeof reflectorCandidates>,
): boolean {
  const expected = topology.nodes[node]?.sessions.filter((s) => s.kind !== "external") ?? [];
  if (expected.length === 0) return false;
  const usable = new Set(candidates.filter((c) => c.ready !== false && !c.deleting).map((c) => c.name));
  const reported = new Map(
    (statuses.find((s) => s.spec.node === node)?.status?.bgpSessions ?? []).map((s) => [s.peerIP, s.state]),
  );
  return expected
    .filter((s) => s.peerNode === undefined || usable.has(s.peerNode))
    .every((s) => reported.get(s.peerIP) === "Established");
}
