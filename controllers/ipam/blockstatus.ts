import type { IPAMBlock, IPAMBlockStatus } from "../../api/index.js";
import { NotFoundError } from "../../datastore/index.js";
import type { Assigner } from "../../ipam/client/index.js";
import { parseCidr } from "../../ipam/index.js";
import { type ConditionInput, createLogger, sameValue, setCondition } from "../../lib/index.js";
import { cidrSize } from "../../net/index.js";
import {
  and,
  type Controller,
  ControllerBuilder,
  createOrDelete,
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

const log = createLogger("ipam-block");

export interface BlockFacts {
  /** The node named by spec.affinity exists. */
  nodeExists: boolean;
  /** The pool named by spec.pool exists. */
  poolExists: boolean;
}

function readyOf(block: IPAMBlock, facts: BlockFacts): ConditionInput {
  const { affinity, allocations, cidr, pool } = block.spec;
  const used = `${allocations.length} of ${cidrSize(parseCidr(cidr))} addresses in use`;
  if (!facts.poolExists)
    return {
      type: "Ready",
      status: false,
      reason: "PoolMissing",
      message: `IPPool ${pool} does not exist; ${used}`,
    };
  if (!affinity)
    return { type: "Ready", status: false, reason: "Released", message: `no node owns the block; ${used}` };
  if (!facts.nodeExists)
    return {
      type: "Ready",
      status: false,
      reason: "NodeMissing",
      message: `node ${affinity} no longer exists; the block is released once its pod addresses are free; ${used}`,
    };
  return { type: "Ready", status: true, reason: "Claimed", message: `owned by node ${affinity}; ${used}` };
}

/**
 * The status of a block: Ready while a node that exists owns it in a pool that exists.
 * observedGeneration follows the block's generation, which every assignment raises.
 */
export function desiredBlockStatus(block: IPAMBlock, facts: BlockFacts, now: Date): IPAMBlockStatus {
  const generation = block.metadata.generation;
  const conditions = setCondition(block.status?.conditions, readyOf(block, facts), generation, now);
  return { ...(generation !== undefined ? { observedGeneration: generation } : {}), conditions };
}

/**
 * Keeps every block's Ready condition and observedGeneration current. Writes are coalesced per
 * block (statusDelayMs after its first change), so a burst of assignments costs one status write
 * and seldom makes an assigner's compare-and-swap lose to it. A node or pool that comes or goes
 * brings back its blocks.
 */
export function blockStatusController(
  ctx: ControllerContext,
  assigner: Assigner,
  poolFilter?: (name: string) => boolean,
  statusDelayMs = 1000,
): Controller {
  const { blocks, nodes, pools } = ctx.informers;
  const mine = inPools(poolFilter);
  const delayMs = statusDelayMs;
  const names = (bs: Iterable<IPAMBlock>) => [...bs].filter(mine).map((b) => b.metadata.name);
  return (
    new ControllerBuilder("ipam-block-status", { workers: 2 })
      .for(blocks, {
        predicate: and(matching(mine), or(resync, generationChanged), { delete: () => false }),
        delayMs,
      })
      // The assigner's cache indexes blocks by node: a start-up replay of every node scans nothing.
      .watches(nodes, (n) => names(assigner.cache.ofNode(n.metadata?.name ?? "")), {
        predicate: createOrDelete,
        delayMs,
      })
      // a label can bring a pool (and its blocks) into this controller's --pool-selector
      .watches(pools, (p) => names(blocks.list().filter((b) => b.spec.pool === p.metadata.name)), {
        predicate: or(createOrDelete, labelsChanged),
        delayMs,
      })
      .complete(new BlockStatusReconciler(ctx, poolFilter))
  );
}

export class BlockStatusReconciler implements Reconciler {
  constructor(
    private readonly ctx: ControllerContext,
    private readonly poolFilter?: (name: string) => boolean,
  ) {}

  async reconcile(name: string): Promise<ReconcileResult | undefined> {
    const ctx = this.ctx;
    const block = ctx.informers.blocks.get(name);
    if (!block || (this.poolFilter && !this.poolFilter(block.spec.pool))) return;
    const affinity = block.spec.affinity;
    let nodeExists = !affinity || ctx.informers.nodes.get(affinity) !== undefined;
    if (!nodeExists && ctx.nodeExists) {
      // Outside this controller's --node-selector shard: alive, and another controller's to describe.
      if (await ctx.nodeExists(affinity)) return;
      nodeExists = false;
    }
    const poolExists = ctx.informers.pools.get(block.spec.pool) !== undefined;
    const status = desiredBlockStatus(block, { nodeExists, poolExists }, new Date());
    if (sameValue(block.status, status)) return;
    try {
      await ctx.store.applyStatus("IPAMBlock", name, status);
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
    const ready = status.conditions?.[0];
    if (ready?.status !== "True") log.info("block not ready", { block: name, reason: ready?.reason });
    return;
  }
}
