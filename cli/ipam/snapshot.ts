import type * as k8s from "@kubernetes/client-node";
import type { IPAMBlock, IPPool } from "../../api/index.js";
import { kubeList } from "../../datastore/index.js";
import type { CliContext } from "../command.js";

/** Everything IPAM commands look at, read once. */
export interface IpamSnapshot {
  pools: IPPool[];
  blocks: IPAMBlock[];
  nodes: Set<string>;
  /** `namespace/name` of every pod. */
  pods: Set<string>;
}

export async function readSnapshot(ctx: CliContext, opts: { pods?: boolean } = {}): Promise<IpamSnapshot> {
  const store = ctx.store();
  const kc = ctx.kc();
  const [pools, blocks, nodes, pods] = await Promise.all([
    store.list("IPPool"),
    store.list("IPAMBlock"),
    kubeList<k8s.V1Node>(kc, "/api/v1/nodes"),
    opts.pods === false
      ? Promise.resolve({ items: [] as k8s.V1Pod[] })
      : kubeList<k8s.V1Pod>(kc, "/api/v1/pods"),
  ]);
  return {
    pools: pools.items,
    blocks: blocks.items,
    nodes: new Set(nodes.items.map((n) => n.metadata?.name ?? "")),
    pods: new Set(pods.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)),
  };
}
