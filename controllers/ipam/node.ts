import type * as k8s from "@kubernetes/client-node";
import {
  API_VERSION,
  blockName,
  type IPAMBlock,
  underlayAddresses,
  withPoolDefaults,
} from "../../api/index.js";
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
  changed,
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

const ipv4Underlay = (n: k8s.V1Node) => underlayAddresses(n)[4];

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
  const controller = new ControllerBuilder("ipam-node", { workers: 4 })
    // (an IPv4 address arriving too: in a Flannel network a node waits for it, see joined)
    .for(nodes, { predicate: or(resync, labelsChanged, beingDeleted, changed(ipv4Underlay)) })
    // A node that is gone comes back here whenever its blocks change (GC freed a pod address).
    .watches(blocks, (b) => b.spec.affinity, {
      predicate: and(matching(inPools(poolFilter)), {
        create: () => false,
        update: (_o, b) => Boolean(b.spec.affinity) && !nodes.get(b.spec.affinity as string),
      }),
    })
    // a label can bring a pool into this controller's --pool-selector
    .watches(pools, () => nodes.keys(), { predicate: or(generationChanged, labelsChanged) })
    .complete(new NodeReconciler(ctx, assigner, poolFilter));
  // A Flannel lease appearing for a node's address is that node's subnet (adoption at join).
  const { flannel } = ctx;
  if (flannel)
    controller.watch(() =>
      flannel.onChange(({ nodes: changed }) => {
        for (const n of changed) controller.enqueue(n);
      }),
    );
  return controller;
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
    return this.joined(name, node.metadata?.labels ?? {}, underlayAddresses(node)[4] !== undefined);
  }

  private async joined(
    name: string,
    labels: Record<string, string>,
    hasIPv4: boolean,
  ): Promise<ReconcileResult | undefined> {
    const { ctx, assigner } = this;
    const cache = assigner.cache;
    const flannel = ctx.flannel;
    const all = poolView(ctx.informers.pools.list(), this.poolFilter);
    // Flannel: a node's subnet is the one a lease names for its address, so a node that has no
    // address yet (registered before its status) waits; its address arriving is a Flannel change.
    const view =
      flannel && !hasIPv4
        ? { ...all, usable: all.usable.filter((p) => !flannel.reservesFirstAddress(p.name)) }
        : all;
    const ref = { name, labels };
    // Flannel: a node with no subnet yet in a mirrored pool may have a lease the last pass has not
    // read (its flanneld took it a moment before the node registered): read etcd again first.
    if (
      flannel &&
      hasIPv4 &&
      view.usable.some(
        (p) =>
          flannel.reservesFirstAddress(p.name) &&
          !flannel.subnetFor(p.name, name) &&
          !cache.ofNode(name).some((b) => b.spec.pool === p.name),
      )
    )
      await flannel.refresh();
    // Flannel: a node keeps the subnet its lease names, and nobody gets another host's subnet.
    const fixed = new Map<string, { cidr: string; annotations: Record<string, string> }>();
    for (const p of view.usable) {
      const s = flannel?.subnetFor(p.name, name);
      if (s) fixed.set(p.name, s);
    }
    const claimed = cache.claimed();
    const reserved = assigner.reserved();
    const plan = planJoin({
      pools: view.usable,
      node: ref,
      ownBlocks: cache.ofNode(name).map((b) => b.spec),
      claimed: flannel
        ? { has: (c) => claimed.has(c) || view.usable.some((p) => flannel.unavailable(p.name, name)?.has(c)) }
        : claimed,
      fixedSubnets: new Map([...fixed].map(([pool, s]) => [pool, s.cidr])),
      ...(reserved.ranges.length > 0 ? { reserved } : {}),
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
      // In the Flannel profile the subnet's first address is the VTEP's (flannel.1 holds it), so
      // it is taken first in host-gw pools too: pods never get it.
      const family = vxlan.get(claim.pool) ?? (flannel?.reservesFirstAddress(claim.pool) ? 4 : undefined);
      const withVtep = family !== undefined && !held.has(family);
      if (withVtep)
        spec = assignInBlock(spec, [{ handle }], { reserved: reservedOrdinals(reserved, spec) }).spec;
      const annotations = fixed.get(claim.pool)?.annotations;
      try {
        const created = await ctx.store.create("IPAMBlock", {
          apiVersion: API_VERSION,
          kind: "IPAMBlock",
          // An adopted lease is recorded on the block; its MAC stays the node's VTEP MAC.
          metadata: { name: blockName(claim.cidr), ...(annotations ? { annotations } : {}) },
          spec,
        });
        cache.upsert(created);
        if (withVtep) held.add(family);
        log.info(
          fixed.has(claim.pool)
            ? "adopted the node's Flannel subnet at node join"
            : "claimed block at node join",
          {
            node: name,
            pool: claim.pool,
            cidr: claim.cidr,
            vtep: withVtep,
            ...annotations,
          },
        );
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
