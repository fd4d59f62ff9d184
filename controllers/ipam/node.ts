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
  reservedOrdinals,
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

/** IPv4 VXLAN pools: where a node's VTEP address comes from. */
function vtepPools(pools: readonly PoolRef[]): PoolRef[] {
  return pools.filter(
    (p) => familyOfValid(p.spec.cidr) === 4 && withPoolDefaults(p).spec.encapsulation === "VXLAN",
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
      .watches(pools, () => nodes.keys(), { predicate: generationChanged })
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
    const reserved = assigner.reserved();
    const plan = planJoin({
      pools: view.usable,
      node: ref,
      ownBlocks: cache.ofNode(name).map((b) => b.spec),
      claimed: cache.claimed(),
      ...(reserved.ranges.length > 0 ? { reserved } : {}),
    });
    const vxlan = new Set(vtepPools(eligiblePools(view.usable, ref, 4).usable).map((p) => p.name));
    const handle = vtepHandle(name);
    let hasVtep = assigner.holding(handle)?.addresses.some((a) => a.family === 4) ?? false;
    let retry: ReconcileResult | undefined;
    for (const claim of plan.claims) {
      let spec = claim.block;
      const withVtep = !hasVtep && vxlan.has(claim.pool);
      if (withVtep)
        spec = assignInBlock(spec, [{ handle }], { reserved: reservedOrdinals(reserved, spec) }).spec;
      try {
        const created = await ctx.store.create("IPAMBlock", {
          apiVersion: API_VERSION,
          kind: "IPAMBlock",
          metadata: { name: blockName(claim.cidr) },
          spec,
        });
        cache.upsert(created);
        if (withVtep) hasVtep = true;
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
    if (!hasVtep && vxlan.size > 0) {
      try {
        const a = await assigner.assign({ node: name, handle, family: 4, pools: [...vxlan] });
        log.info("reserved VTEP address", { node: name, ip: a.ips[0] });
      } catch (err) {
        log.warn("could not reserve the node's VTEP address", { node: name, error: String(err) });
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
