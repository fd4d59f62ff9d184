import type * as k8s from "@kubernetes/client-node";
import type { IPAMBlock, IPPool, IPReservation } from "../../api/index.js";
import { kubeList, type Store } from "../../datastore/index.js";
import type { CliContext } from "../command.js";

/** Everything IPAM commands look at, read once. */
export interface IpamSnapshot {
  pools: IPPool[];
  blocks: IPAMBlock[];
  reservations: IPReservation[];
  nodes: Set<string>;
  /** `namespace/name` of every pod. */
  pods: Set<string>;
  /** `namespace/name` of every pod to the node it is bound to ("" when not scheduled). */
  podNodes: Map<string, string>;
}

/** IPReservations, or none on a cluster whose CRDs predate the kind. */
async function reservations(store: Store): Promise<IPReservation[]> {
  try {
    return (await store.list("IPReservation")).items;
  } catch (err) {
    if ((err as { code?: number }).code === 404 || /not found|404/i.test(String(err))) return [];
    throw err;
  }
}

export async function readSnapshot(ctx: CliContext, opts: { pods?: boolean } = {}): Promise<IpamSnapshot> {
  const store = ctx.store();
  const kc = ctx.kc();
  const [pools, blocks, reserved, nodes, pods] = await Promise.all([
    store.list("IPPool"),
    store.list("IPAMBlock"),
    reservations(store),
    kubeList<k8s.V1Node>(kc, "/api/v1/nodes"),
    opts.pods === false
      ? Promise.resolve({ items: [] as k8s.V1Pod[] })
      : kubeList<k8s.V1Pod>(kc, "/api/v1/pods"),
  ]);
  return {
    pools: pools.items,
    blocks: blocks.items,
    reservations: reserved,
    nodes: new Set(nodes.items.map((n) => n.metadata?.name ?? "")),
    pods: new Set(pods.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)),
    podNodes: new Map(
      pods.items.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, p.spec?.nodeName ?? ""]),
    ),
  };
}
