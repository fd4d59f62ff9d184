import { API_VERSION, blockName, type IPAMBlock, withPoolDefaults } from "../../api/index.js";
import { AlreadyExistsError, ConflictError } from "../../datastore/index.js";
import type { Assigner } from "../../ipam/client/index.js";
import {
  assignInBlock,
  eligiblePools,
  isEmpty,
  type PoolRef,
  planJoin,
  poolView,
  vtepHandle,
} from "../../ipam/index.js";
import { createLogger } from "../../lib/index.js";
import { familyOfValid } from "../../net/index.js";
import {
  and,
  beingDeleted,
  type Controller,
  ControllerBuilder,
  generationChanged,
  labelsChanged,
  matching,
  or,
  type ReconcileResult,
  type Reconciler,
  resync,
} from "../../runtime/index.js";
import type { ControllerContext } from "../context.js";
import { inPools } from "./pools.js";

const log = createLogger("ipam-node");

/** VXLAN pools of a family (VXLAN is the default encapsulation): where a node's VTEP address of that family comes from. */
function vtepPools(pools: readonly PoolRef[], family: 4 | 6): PoolRef[] {
  return pools.filter(
    (p) => familyOfValid(p.spec.cidr) === family && withPoolDefaults(p).spec.encapsulation === "VXLAN",
  );
}

/**
 * Node join: one block per matching NodeSubnet pool, one block per family from a Blocks pool,
 * and the node's VTEP address under `vtep.<node>` placed into the first VXLAN block before it is
 * created, so the claim and the reservation are one write. Node deletion: the VTEP is released
 * and the node's empty blocks are deleted; blocks that still hold pod addresses stay until the
 * garbage collector has freed them (each such change brings the node back here).
 */
export function nodeController(
  ctx: ControllerContext,
  assigner: Assigner,
  poolFilter?: (name: string) => boolean,
): Controller {
  const { nodes, blocks, pools } = ctx.informers;
  return (
    new ControllerBuilder("ipam-node", { workers: 4 })
      .for(nodes, { predicate: or(resync, labelsChanged, beingDeleted) })
      // A node that is gone comes back here whenever its blocks change (GC freed a pod address).
      .watches(blocks, (b) => b.spec.affinity, {
        predicate: and(matching(inPools(poolFilter)), {
          create: () => false,
          update: (_o, b) => Boolean(b.spec.affinity) && !nodes.get(b.spec.affinity as string),
        }),
      })
      // a label can bring a pool into this controller's --pool-selector
      .watches(pools, () => nodes.keys(), { predicate: or(generationChanged, labelsChanged) })
      .complete(new NodeReconciler(ctx, assigner, poolFilter))
  );
}

export class NodeReconciler implements Reconciler {
  private readonly mine: (b: IPAMBlock) => boolean;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly assigner: Assigner,
    private readonly poolFilter?: (name: string) => boolean,
  ) {
    this.mine = inPools(poolFilter);
  }

  async reconcile(name: string): Promise<ReconcileResult | undefined> {
    const ctx = this.ctx;
    const node = ctx.informers.nodes.get(name);
    if (!node && (await ctx.nodeExists?.(name))) return; // another shard's node (label-filtered cache)
    if (!node || node.metadata?.deletionTimestamp) return this.released(name);
    return this.joined(name, node.metadata?.labels ?? {});
  }

  private async joined(name: string, labels: Record<string, string>): Promise<ReconcileResult | undefined> {
    const { ctx, assigner } = this;
    const cache = assigner.cache;
    const view = poolView(ctx.informers.pools.list(), this.poolFilter);
    const ref = { name, labels };
    const plan = planJoin({
      pools: view.usable,
      node: ref,
      ownBlocks: cache.ofNode(name).map((b) => b.spec),
      claimed: cache.claimed(),
    });
    // One VTEP address per family with a VXLAN pool, all under one handle (one device, one MAC).
    const vxlan = new Map<string, 4 | 6>();
    for (const family of [4, 6] as const)
      for (const p of vtepPools(eligiblePools(view.usable, ref, family).usable, family))
        vxlan.set(p.name, family);
    const handle = vtepHandle(name);
    const held = new Set(assigner.holding(handle)?.addresses.map((a) => a.family) ?? []);
    let retry: ReconcileResult | undefined;
    for (const claim of plan.claims) {
      let spec = claim.block;
      const family = vxlan.get(claim.pool);
      const withVtep = family !== undefined && !held.has(family);
      if (withVtep) spec = assignInBlock(spec, [{ handle }]).spec;
      try {
        const created = await ctx.store.create("IPAMBlock", {
          apiVersion: API_VERSION,
          kind: "IPAMBlock",
          metadata: { name: blockName(claim.cidr) },
          spec,
        });
        cache.upsert(created);
        if (withVtep) held.add(family);
        log.info("claimed block at node join", {
          node: name,
          pool: claim.pool,
          cidr: claim.cidr,
          vtep: withVtep,
        });
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) throw err;
        // Another node won this block; once the cache has it the next plan picks another.
        const fresh = await ctx.store.get("IPAMBlock", blockName(claim.cidr));
        if (fresh) cache.upsert(fresh);
        retry = { requeueAfter: 50 };
      }
    }
    if (retry) return retry;
    for (const e of plan.errors) log.warn("node join incomplete", { node: name, error: e.message });
    for (const family of [4, 6] as const) {
      const pools = [...vxlan].filter(([, f]) => f === family).map(([p]) => p);
      if (held.has(family) || pools.length === 0) continue;
      try {
        const a = await assigner.assign({ node: name, handle, family, pools });
        log.info("reserved VTEP address", { node: name, ip: a.ips[0] });
      } catch (err) {
        log.warn("could not reserve the node's VTEP address", { node: name, family, error: String(err) });
        return { requeueAfter: 30_000 };
      }
    }
    return plan.errors.length > 0 ? { requeueAfter: 30_000 } : undefined;
  }

  private async released(name: string): Promise<ReconcileResult | undefined> {
    const { ctx, assigner, mine } = this;
    if (assigner.cache.withHandle(vtepHandle(name)).some(mine)) {
      const freed = await assigner.release(vtepHandle(name));
      if (freed.length)
        log.info("released VTEP address of deleted node", { node: name, ips: freed.map((a) => a.ip) });
    }
    let kept = 0;
    for (const b of assigner.cache.ofNode(name).filter(mine)) {
      if (!isEmpty(b.spec)) {
        kept++;
        continue;
      }
      try {
        // Only the version we saw empty: an assignment in between makes this a conflict, not a loss.
        await ctx.store.delete("IPAMBlock", b.metadata.name, { resourceVersion: b.metadata.resourceVersion });
        assigner.cache.remove(b.metadata.name);
        log.info("released empty block of deleted node", { node: name, cidr: b.spec.cidr });
      } catch (err) {
        if (err instanceof ConflictError) return { requeueAfter: 100 };
        throw err;
      }
    }
    if (kept)
      log.info("deleted node keeps blocks with pod addresses until GC frees them", {
        node: name,
        blocks: kept,
      });
    return undefined;
  }
}
