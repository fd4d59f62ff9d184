import { API_VERSION, blockName, type IPAMBlock, withPoolDefaults } from "../../api/index.js";
import { AlreadyExistsError, ConflictError } from "../../datastore/index.js";
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
import { Controller, type ReconcileResult, type Reconciler } from "../../runtime/index.js";
import type { ControllerContext, ControllerPart } from "../context.js";
import type { IpamShared } from "./shared.js";

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
export class NodeReconciler implements Reconciler, ControllerPart {
  readonly name = "ipam-node";
  private controller: Controller | undefined;
  private ctx: ControllerContext | undefined;

  constructor(
    private readonly shared: IpamShared,
    private readonly poolFilter?: (name: string) => boolean,
  ) {}

  start(ctx: ControllerContext): void {
    this.ctx = ctx;
    this.shared.init(ctx);
    const controller = new Controller(this.name, this, { workers: 4 });
    this.controller = controller;
    const { nodes, blocks, pools } = ctx.informers;
    const enqueue = (name: string | undefined) => name && controller.enqueue(name);
    nodes.on({
      add: (n) => enqueue(n.metadata?.name),
      update: (o, n) => {
        if (o === n || JSON.stringify(o.metadata?.labels) !== JSON.stringify(n.metadata?.labels))
          enqueue(n.metadata?.name);
        else if (n.metadata?.deletionTimestamp) enqueue(n.metadata?.name);
      },
      delete: (n) => enqueue(n.metadata?.name),
    });
    const mine = (b: IPAMBlock) => !this.poolFilter || this.poolFilter(b.spec.pool);
    blocks.on({
      // A node that is gone comes back here whenever its blocks change (GC freed a pod address).
      update: (_o, b) =>
        mine(b) && b.spec.affinity && !nodes.get(b.spec.affinity) && enqueue(b.spec.affinity),
      delete: (b) => mine(b) && enqueue(b.spec.affinity),
    });
    const all = () => {
      for (const n of nodes.list()) enqueue(n.metadata?.name);
    };
    pools.on({
      add: all,
      update: (o, n) => o.metadata.generation !== n.metadata.generation && all(),
      delete: all,
    });
    controller.start();
  }

  async stop(): Promise<void> {
    await this.controller?.stop();
  }

  async reconcile(name: string): Promise<ReconcileResult | undefined> {
    const ctx = this.ctx;
    if (!ctx) throw new Error("not started");
    const node = ctx.informers.nodes.get(name);
    if (!node && (await ctx.nodeExists?.(name))) return; // another shard's node (label-filtered cache)
    if (!node || node.metadata?.deletionTimestamp) return this.released(name);
    return this.joined(name, node.metadata?.labels ?? {});
  }

  private async joined(name: string, labels: Record<string, string>): Promise<ReconcileResult | undefined> {
    const ctx = this.ctx!;
    const assigner = this.shared.assigner!;
    const cache = assigner.cache;
    const view = poolView(ctx.informers.pools.list(), this.poolFilter);
    const ref = { name, labels };
    const plan = planJoin({
      pools: view.usable,
      node: ref,
      ownBlocks: cache.ofNode(name).map((b) => b.spec),
      claimed: cache.claimed(),
    });
    const vxlan = new Set(vtepPools(eligiblePools(view.usable, ref, 4).usable).map((p) => p.name));
    const handle = vtepHandle(name);
    let hasVtep = assigner.holding(handle)?.addresses.some((a) => a.family === 4) ?? false;
    let retry: ReconcileResult | undefined;
    for (const claim of plan.claims) {
      let spec = claim.block;
      const withVtep = !hasVtep && vxlan.has(claim.pool);
      if (withVtep) spec = assignInBlock(spec, [{ handle }]).spec;
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
    const ctx = this.ctx!;
    const assigner = this.shared.assigner!;
    const mine = (b: IPAMBlock) => !this.poolFilter || this.poolFilter(b.spec.pool);
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
