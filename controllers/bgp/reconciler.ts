import * as k8s from "@kubernetes/client-node";
import type { BGPStatus, LabelSelector } from "../../api/index.js";
import { passwordProblem, secretRefKey } from "../../bgp/index.js";
import { NotFoundError } from "../../datastore/index.js";
import { createLogger, matchesSelector, mergeConditions, ownNamespace, sameValue } from "../../lib/index.js";
import {
  annotationsChanged,
  type Controller,
  ControllerBuilder,
  changed,
  generationChanged,
  labelsChanged,
  or,
  type ReconcileResult,
  type Reconciler,
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
  /** Status is recomputed at least this often, to notice Secret changes (default 60 s). */
  resyncMs?: number;
}

/**
 * Writes status on BGPPeers and the BGPConfiguration from the same topology the agents compute.
 * The whole topology is one unit of work (any change can move every count), debounced through a
 * single work-queue key; only statuses that differ are written.
 */
export function bgpStatusController(ctx: ControllerContext, opts: BgpStatusOptions = {}): Controller {
  const { nodes, pools, bgpPeers, bgpConfigs } = ctx.informers;
  const all = () => KEY;
  const controller = new ControllerBuilder("bgp-status", { workers: 1 })
    .watches(nodes, all, {
      predicate: or(
        labelsChanged,
        annotationsChanged,
        changed<k8s.V1Node>((n) => n.status?.addresses),
      ),
    })
    // labels too: with a selector, a label added to a peer brings it into scope at once
    .watches(pools, all, { predicate: or(generationChanged, labelsChanged) })
    .watches(bgpPeers, all, { predicate: or(generationChanged, labelsChanged) })
    .watches(bgpConfigs, all, { predicate: or(generationChanged, labelsChanged) })
    .complete(new BgpStatusReconciler(ctx, opts));
  controller.enqueue(KEY);
  return controller;
}

export class BgpStatusReconciler implements Reconciler {
  private readonly core: k8s.CoreV1Api;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly opts: BgpStatusOptions = {},
  ) {
    this.core = ctx.kc.makeApiClient(k8s.CoreV1Api);
  }

  private inScope(labels: Record<string, string> | undefined): boolean {
    return !this.opts.selector || matchesSelector(this.opts.selector, labels ?? {});
  }

  /** Verdicts on the referenced passwords; the values are dropped right after the check. */
  private async checkPasswords(
    refs: ReturnType<typeof referencedPasswords>,
  ): Promise<Map<string, string | undefined>> {
    const out = new Map<string, string | undefined>();
    const ns = this.opts.secretNamespace ?? ownNamespace();
    for (const ref of refs) {
      const namespace = ref.namespace ?? ns;
      try {
        const secret = await this.core.readNamespacedSecret({ name: ref.name, namespace });
        const data = secret.data?.[ref.key];
        out.set(
          secretRefKey(ref),
          data === undefined
            ? `the Secret has no key ${ref.key}`
            : passwordProblem(Buffer.from(data, "base64").toString("utf8")),
        );
      } catch (err) {
        const code = (err as { code?: number }).code;
        out.set(
          secretRefKey(ref),
          code === 404
            ? `Secret ${namespace}/${ref.name} not found`
            : `Secret ${namespace}/${ref.name} cannot be read (${code ?? "error"})`,
        );
      }
    }
    return out;
  }

  async reconcile(): Promise<ReconcileResult | undefined> {
    const { nodes, pools, bgpPeers, bgpConfigs } = this.ctx.informers;
    const peers = bgpPeers.list();
    const config = bgpConfigs.get("default");
    const scopedPeers = peers.filter((p) => this.inScope(p.metadata.labels));
    const scopedConfig = config && this.inScope(config.metadata.labels) ? config : undefined;
    const passwords = await this.checkPasswords(referencedPasswords(scopedPeers, scopedConfig));
    const desired = desiredBgpStatus({
      nodes: nodes.list(),
      pools: pools.list(),
      peers,
      ...(config ? { config } : {}),
      passwords,
    });
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    for (const peer of scopedPeers) {
      const d = desired.peers.get(peer.metadata.name);
      if (d) await this.write("BGPPeer", peer.metadata.name, d, now);
    }
    if (scopedConfig && desired.config)
      await this.write("BGPConfiguration", scopedConfig.metadata.name, desired.config, now);
    return { requeueAfter: this.opts.resyncMs ?? 60_000 };
  }

  private async write(
    kind: "BGPPeer" | "BGPConfiguration",
    name: string,
    d: { status: Omit<BGPStatus, "conditions">; conditions: Parameters<typeof mergeConditions>[1] },
    now: string,
  ): Promise<void> {
    const ctx = this.ctx;
    const cur = kind === "BGPPeer" ? ctx.informers.bgpPeers.get(name) : ctx.informers.bgpConfigs.get(name);
    if (!cur) return;
    const conditions = mergeConditions(cur.status?.conditions, d.conditions, cur.metadata.generation, now);
    const next: BGPStatus = { ...d.status, conditions };
    if (cur.metadata.generation !== undefined) next.observedGeneration = cur.metadata.generation;
    if (sameValue(next, cur.status)) return;
    const ready = conditions.find((c) => c.type === "Ready");
    log.info("status", {
      kind,
      name,
      ready: ready?.status,
      reason: ready?.reason,
      sessions: next.expectedSessions,
    });
    try {
      // Server-side apply of the status alone: the spec stays owned by whoever applied it (GitOps).
      await ctx.store.applyStatus(kind, name, next);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
}
