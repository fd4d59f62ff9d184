import type * as k8s from "@kubernetes/client-node";
import {
  ANNOTATIONS,
  API_VERSION,
  type IPAMBlock,
  type IPAMBlockSpec,
  type IPPool,
  type NodeNetworkStatus,
  type RouteIntent,
  type RouteIntentSpec,
  type RouteIntentStatus,
  underlayAddresses,
  vtepMAC,
  withPoolDefaults,
} from "../../api/index.js";
import { ConflictError, NotFoundError } from "../../datastore/index.js";
import { borrowedAddresses, borrowersOf, findHandle, vtepHandle } from "../../ipam/index.js";
import { canonicalJson, createLogger, sameValue } from "../../lib/index.js";
import { type Family, familyOfValid } from "../../net/index.js";
import {
  type Controller,
  ControllerBuilder,
  changed,
  generationChanged,
  labelsChanged,
  or,
  type ReconcileResult,
  type Reconciler,
  resync,
} from "../../runtime/index.js";
import type { ControllerContext, FlannelProfile } from "../context.js";
import { computeRouteIntent, type NodeBlock } from "./compute.js";
import { type IntentWait, intentStatus } from "./status.js";
import { underlaySubnets } from "./underlay.js";

const log = createLogger("routeintent");

/** How long after its spec lands an intent's status is written (statuses of a burst come together). */
const STATUS_DELAY_MS = 500;

/** Index of the block informer: blocks by the node that owns them. */
const BY_AFFINITY = "affinity";

/** The VTEP addresses of a node: what its IPAM reserved under `vtep.<node>`, one per family. */
function findVtep(node: string, blocks: IPAMBlock[]): Partial<Record<Family, string>> {
  const found = findHandle(
    blocks.map((b) => b.spec),
    vtepHandle(node),
  );
  const v4 = found.find((a) => familyOfValid(a.ip) === 4)?.ip;
  const v6 = found.find((a) => familyOfValid(a.ip) === 6)?.ip;
  return { ...(v4 ? { 4: v4 } : {}), ...(v6 ? { 6: v6 } : {}) };
}

export interface DesiredIntent {
  spec: RouteIntentSpec;
  blocks: number;
  /** Blocks whose routes are left out, and why (the status names them). */
  leftOut: string[];
}

/** What this node's RouteIntent should say, or why it cannot be written yet. */
export function desiredIntent(
  nodeName: string,
  node: k8s.V1Node,
  blocks: IPAMBlock[],
  pools: IPPool[],
  extra: {
    /** The node's own status: its underlay subnets, for CrossSubnet. */
    reported?: NodeNetworkStatus | undefined;
    /** A pool mirrored as Flannel leases takes Flannel's VXLAN device, VNI and port. */
    flannel?: Pick<FlannelProfile, "vxlan"> | undefined;
  } = {},
): DesiredIntent | { wait: IntentWait } {
  const { reported, flannel } = extra;
  const underlay = underlayAddresses(node);
  // A garbled weft.dev/underlay-ip is never half-read: taking the family that parsed and the
  // InternalIP for the other would route one family somewhere the operator did not say. The
  // intent keeps its last spec until the annotation is fixed.
  if (underlay.problems.length)
    return {
      wait: {
        reason: "InvalidUnderlayAddress",
        message: `Node ${nodeName}: ${underlay.problems.join("; ")}`,
      },
    };
  if (!underlay[4] && !underlay[6])
    return {
      wait: {
        reason: "NoUnderlayAddress",
        message: "node has no InternalIP and no weft.dev/underlay-ip annotation",
      },
    };
  const poolByName = new Map(pools.map((p) => [p.metadata.name, withPoolDefaults(p)]));
  const own: NodeBlock[] = [];
  let vxlan: { vni: number; port: number; mtu?: number; device?: string } | undefined;
  const vxlanFamilies = new Set<Family>();
  // A node that adopted a Flannel lease keeps that lease's VTEP MAC (flanneld's device has it).
  let mac: string | undefined;
  for (const b of blocks) {
    const pool = poolByName.get(b.spec.pool);
    if (!pool) continue;
    const { encapsulation, vxlan: v } = pool.spec;
    own.push({
      cidr: b.spec.cidr,
      encapsulation,
      name: b.metadata.name,
      pool: pool.metadata.name,
      ...(pool.spec.crossSubnet ? { crossSubnet: true } : {}),
    });
    if (encapsulation !== "VXLAN") continue;
    vxlanFamilies.add(familyOfValid(b.spec.cidr));
    vxlan ??= flannel?.vxlan(pool) ?? { vni: v.vni, port: v.port };
    if (v.mtu !== undefined && (vxlan.mtu === undefined || v.mtu < vxlan.mtu)) vxlan.mtu = v.mtu;
    mac ??= b.metadata.annotations?.[ANNOTATIONS.vtepMAC];
  }
  let vtep: RouteIntentSpec["vtep"];
  if (vxlan) {
    const ips = findVtep(nodeName, blocks);
    const missing = [...vxlanFamilies].filter((f) => !ips[f]);
    if (missing.length)
      return {
        wait: {
          reason: "WaitingForVTEP",
          message: `waiting for the node's ${missing.map((f) => `IPv${f}`).join(" and ")} VTEP address to be reserved`,
        },
      };
    vtep = {
      ...(ips[4] ? { ip: ips[4] } : {}),
      ...(ips[6] ? { ipv6: ips[6] } : {}),
      mac: mac ?? vtepMAC(nodeName),
      ...vxlan,
    };
  }
  const subnets = underlaySubnets(underlay, reported?.status?.underlay?.addresses);
  const { spec, leftOut } = computeRouteIntent({
    node: nodeName,
    underlay,
    blocks: own,
    ...(vtep ? { vtep } : {}),
    ...(subnets.length ? { underlaySubnets: subnets } : {}),
  });
  return { spec, blocks: own.length, leftOut };
}

/**
 * The node's borrowed addresses in other nodes' blocks as host-prefix pseudo-blocks (/32, /128)
 * of the node: routed to it like its blocks, more specific than the lender's block route.
 */
export function borrowedBlocks(lenders: Iterable<IPAMBlockSpec>, node: string): IPAMBlock[] {
  return borrowedAddresses(lenders, node).map((a) => ({
    apiVersion: API_VERSION,
    kind: "IPAMBlock" as const,
    metadata: { name: `borrowed-${a.cidr}` },
    spec: { cidr: a.cidr, pool: a.pool, affinity: node, allocations: [], sequence: 0 },
  }));
}

/**
 * Keeps one RouteIntent per node equal to what its blocks and pools imply. A node join or a new
 * block is one write of that node's intent; nothing rewrites other nodes' intents.
 */
export function routeIntentController(ctx: ControllerContext): Controller {
  const { nodes, blocks, pools, intents } = ctx.informers;
  blocks.addIndex(BY_AFFINITY, (b) => b.spec.affinity || undefined);
  const reconciler = new RouteIntentReconciler(ctx);
  intents.on({ delete: (i) => reconciler.forget(i.metadata.name) });
  // A borrowed address is routed to its borrower: which blocks lend to which node, kept as they change.
  blocks.on({
    add: (b) => reconciler.lent(undefined, b),
    update: (o, b) => reconciler.lent(o, b),
    delete: (b) => reconciler.lent(b, undefined),
  });
  const controller = new ControllerBuilder("routeintent", { workers: 4 })
    // The underlay goes into the spec, the labels onto the intent (agents' --node-selector).
    .for(nodes, { predicate: or(resync, changed(underlayAddresses), labelsChanged) })
    // Status writes leave the generation alone and change no intent; a borrower's intent
    // changes with the lender's block (its borrowed addresses are routed to it).
    .watches(
      blocks,
      (b) => [b.spec.affinity, ...borrowersOf(b.spec)].filter((n): n is string => n !== undefined),
      { predicate: or(resync, generationChanged) },
    )
    .watches(pools, () => nodes.keys(), { predicate: or(generationChanged, labelsChanged) })
    // Our own write arriving brings the node back for the status (and a reconcile skipped while
    // the cache was behind runs again). A moment later: in a burst of joins the specs, which
    // agents wait for, go out before the statuses, which nobody waits for.
    .watches(intents, (i) => i.metadata.name, { delayMs: STATUS_DELAY_MS })
    .complete(reconciler);
  // A node flanneld stops running (its weft-agent took over) becomes this reconciler's again.
  const { flannel } = ctx;
  if (flannel)
    controller.watch(() =>
      flannel.onChange(({ nodes: changed }) => {
        for (const n of changed) controller.enqueue(n);
      }),
    );
  return controller;
}

export class RouteIntentReconciler implements Reconciler {
  /**
   * What this process last wrote per intent. The informer delivers our own writes a little later;
   * until it has, a reconcile would compare with an older object and write the same thing again.
   */
  private readonly written = new Map<string, WrittenIntent>();
  /** Node -> names of other nodes' blocks it borrowed addresses from (strictAffinity false). */
  private readonly lenders = new Map<string, Set<string>>();

  constructor(private readonly ctx: ControllerContext) {}

  /** Follows a block's borrowers from one version of the block to the next. */
  lent(before: IPAMBlock | undefined, after: IPAMBlock | undefined): void {
    const name = (after ?? before)!.metadata.name;
    const was = before ? borrowersOf(before.spec) : new Set<string>();
    const now = after ? borrowersOf(after.spec) : new Set<string>();
    for (const n of was) {
      if (now.has(n)) continue;
      const set = this.lenders.get(n);
      set?.delete(name);
      if (set?.size === 0) this.lenders.delete(n);
    }
    for (const n of now) {
      let set = this.lenders.get(n);
      if (!set) {
        set = new Set();
        this.lenders.set(n, set);
      }
      set.add(name);
    }
  }

  /** The intent is gone: what was written before says nothing about the next one. */
  forget(name: string): void {
    this.written.delete(name);
  }

  async reconcile(nodeName: string): Promise<ReconcileResult | undefined> {
    const ctx = this.ctx;
    const { nodes, blocks, pools, intents } = ctx.informers;
    // The intents of nodes flanneld runs follow their leases: the Flannel part writes those.
    if (ctx.flannel?.ownsIntent(nodeName)) return;
    const node = nodes.get(nodeName);
    const existing = intents.get(nodeName);
    if (!node || node.metadata?.deletionTimestamp) {
      // With --node-selector a node outside this shard is absent from the cache but alive.
      if (existing && !node && (await ctx.nodeExists?.(nodeName))) return;
      this.written.delete(nodeName);
      if (existing) {
        await ctx.store.delete("RouteIntent", nodeName);
        log.info("deleted RouteIntent of removed node", { node: nodeName });
      }
      return;
    }
    const mine = this.written.get(nodeName);
    if (mine && isBehind(existing, mine)) return; // the watch brings our write, and this node again
    const own = blocks
      .addIndex(BY_AFFINITY, (b) => b.spec.affinity || undefined)
      .byIndex(BY_AFFINITY, nodeName);
    const allPools = pools.list();
    // CrossSubnet intents carry the node's underlay subnets, which only its agent knows (from its
    // kernel): read from its NodeNetworkStatus, for those nodes only (a watch of every status
    // would bring every agent's heartbeat here).
    const crossSubnet = usesCrossSubnet(own, allPools);
    const reported = crossSubnet ? await ctx.store.get("NodeNetworkStatus", nodeName) : undefined;
    const desired = desiredIntent(nodeName, node, [...own, ...this.borrowedBlocks(nodeName)], allPools, {
      reported,
      flannel: ctx.flannel,
    });
    try {
      if ("wait" in desired) {
        log.debug("RouteIntent not complete yet", { node: nodeName, reason: desired.wait.message });
        // An intent that exists keeps its last spec (agents keep routing); its status says why.
        if (existing) await this.writeStatus(existing, desired.wait);
        return { requeueAfter: 5000 };
      }
      // A joining node is reconciled before its block reaches the cache: an intent now would say
      // nothing and be rewritten a moment later. The block's arrival brings the node back.
      if (!existing && desired.blocks === 0) return;
      // The node's labels travel with its intent, so agents can be sharded by --node-selector too.
      const labels = node.metadata?.labels ?? {};
      let current = existing;
      if (
        !current ||
        !sameValue(current.spec, desired.spec) ||
        !sameValue(current.metadata.labels ?? {}, labels)
      ) {
        // Server-side apply: the controller owns the whole intent, so a label or route it no longer
        // names is removed, and managedFields show weft-controller as the one manager.
        current = await ctx.store.apply("RouteIntent", {
          apiVersion: API_VERSION,
          kind: "RouteIntent",
          metadata: { name: nodeName, labels, ownerReferences: ownerRef(node) },
          spec: desired.spec,
        });
        this.written.set(nodeName, {
          uid: current.metadata.uid,
          generation: current.metadata.generation ?? 0,
        });
        log.info(existing ? "updated RouteIntent" : "created RouteIntent", {
          node: nodeName,
          routes: desired.spec.routes.length,
          generation: current.metadata.generation,
        });
        // The status follows when this write comes back on the watch: one write per pass keeps
        // the next node's spec from waiting behind this node's status.
        return;
      }
      await this.writeStatus(current, desired.leftOut);
      // the agent reports its subnets once it runs; look again until they are in the intent
      if (crossSubnet && !desired.spec.underlaySubnets) return { requeueAfter: 10_000 };
    } catch (err) {
      // Deleted or replaced under us: the informer delivers the change and requeues this node.
      if (err instanceof ConflictError || err instanceof NotFoundError) return { requeueAfter: 200 };
      throw err;
    }
    return;
  }

  /**
   * The node's borrowed addresses as host-prefix pseudo-blocks (/32, /128): routed to the node like
   * its blocks, more specific than the lender's block route.
   */
  private borrowedBlocks(nodeName: string): IPAMBlock[] {
    const names = this.lenders.get(nodeName);
    if (!names || names.size === 0) return [];
    const { blocks } = this.ctx.informers;
    const lenders = [...names].flatMap((n) => {
      const b = blocks.get(n);
      return b ? [b.spec] : [];
    });
    return borrowedBlocks(lenders, nodeName);
  }

  private async writeStatus(intent: RouteIntent, problem: IntentWait | string[]): Promise<void> {
    const name = intent.metadata.name;
    const status = intentStatus(intent, problem, new Date());
    if (sameValue(intent.status, status)) return;
    const key = statusKey(status);
    const mine = this.written.get(name);
    if (mine?.uid === intent.metadata.uid && mine?.status === key) return;
    await this.ctx.store.applyStatus("RouteIntent", name, status);
    this.written.set(name, {
      uid: intent.metadata.uid,
      generation: Math.max(mine?.generation ?? 0, intent.metadata.generation ?? 0),
      status: key,
    });
  }
}

interface WrittenIntent {
  uid: string | undefined;
  generation: number;
  /** statusKey of the status last applied. */
  status?: string;
}

/** The cached intent is older than what this process wrote (or its create is not cached yet). */
function isBehind(cached: RouteIntent | undefined, mine: WrittenIntent): boolean {
  if (!cached) return true;
  return cached.metadata.uid === mine.uid && (cached.metadata.generation ?? 0) < mine.generation;
}

/** A status without its timestamps: what it says, and about which generation. */
function statusKey(status: RouteIntentStatus): string {
  const conditions = (status.conditions ?? []).map(({ lastTransitionTime: _t, ...c }) => c);
  return canonicalJson({ observedGeneration: status.observedGeneration, conditions });
}

function ownerRef(node: k8s.V1Node) {
  const uid = node.metadata?.uid;
  const name = node.metadata?.name;
  return uid && name ? [{ apiVersion: "v1", kind: "Node", name, uid }] : undefined;
}

/** Whether one of the node's blocks belongs to a CrossSubnet VXLAN pool. */
function usesCrossSubnet(blocks: IPAMBlock[], pools: IPPool[]): boolean {
  const cross = new Set(
    pools
      .map(withPoolDefaults)
      .filter((p) => p.spec.crossSubnet && p.spec.encapsulation === "VXLAN")
      .map((p) => p.metadata.name),
  );
  return cross.size > 0 && blocks.some((b) => cross.has(b.spec.pool));
}
