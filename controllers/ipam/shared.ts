import { Assigner } from "../../ipam/client/index.js";
import type { ControllerContext } from "../context.js";

/** The one Assigner (and its block cache) the IPAM parts of a controller process share. */
export class IpamShared {
  assigner: Assigner | undefined;

  constructor(private readonly poolFilter?: (name: string) => boolean) {}

  init(ctx: ControllerContext): Assigner {
    this.assigner ??= new Assigner({
      store: ctx.store,
      blocks: ctx.informers.blocks,
      pools: ctx.informers.pools,
      nodeLabels: (n) => ctx.informers.nodes.get(n)?.metadata?.labels,
      poolFilter: this.poolFilter,
    });
    return this.assigner;
  }
}
