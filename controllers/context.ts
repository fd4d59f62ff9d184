import * as k8s from "@kubernetes/client-node";
import type { BGPConfiguration, BGPPeer, IPAMBlock, IPPool, RouteIntent } from "../api/index.js";
import type { Store } from "../datastore/index.js";
import { coreListWatch, Informer, storeListWatch } from "../runtime/index.js";

/** The caches every reconciler of weft-controller reads from; one informer per kind, shared. */
export interface Informers {
  nodes: Informer<k8s.V1Node>;
  pods: Informer<k8s.V1Pod>;
  pools: Informer<IPPool>;
  blocks: Informer<IPAMBlock>;
  intents: Informer<RouteIntent>;
  bgpConfigs: Informer<BGPConfiguration>;
  bgpPeers: Informer<BGPPeer>;
}

export interface ControllerContext {
  store: Store;
  kc: k8s.KubeConfig;
  informers: Informers;
  /** Direct read, for nodes the (possibly label-filtered) cache does not hold. */
  nodeExists?(name: string): Promise<boolean>;
}

export function nodeExistsFn(kc: k8s.KubeConfig): (name: string) => Promise<boolean> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return async (name) => {
    try {
      await core.readNode({ name });
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return false;
      throw err;
    }
  };
}

/** One concern of weft-controller (IPAM, RouteIntents, BGP status): started once its caches sync. */
export interface ControllerPart {
  readonly name: string;
  start(ctx: ControllerContext): void | Promise<void>;
  /** Finish in-flight work and stop. */
  stop(): Promise<void>;
}

export interface InformerOptions {
  resyncMs?: number;
  /** Only nodes matching this label selector (kubectl syntax): one controller per shard of nodes. */
  nodeSelector?: string;
}

export function createInformers(store: Store, kc: k8s.KubeConfig, opts: InformerOptions = {}): Informers {
  const resyncMs = opts.resyncMs ?? 5 * 60_000;
  return {
    nodes: new Informer(
      coreListWatch<k8s.V1Node>(kc, "Node", opts.nodeSelector ? { labelSelector: opts.nodeSelector } : {}),
      { resyncMs },
    ),
    pods: new Informer(coreListWatch<k8s.V1Pod>(kc, "Pod"), { resyncMs }),
    pools: new Informer(storeListWatch(store, "IPPool"), { resyncMs }),
    blocks: new Informer(storeListWatch(store, "IPAMBlock"), { resyncMs }),
    intents: new Informer(storeListWatch(store, "RouteIntent"), { resyncMs }),
    bgpConfigs: new Informer(storeListWatch(store, "BGPConfiguration"), { resyncMs }),
    bgpPeers: new Informer(storeListWatch(store, "BGPPeer"), { resyncMs }),
  };
}

export async function startInformers(informers: Informers): Promise<void> {
  const all = Object.values(informers) as Array<Informer<never>>;
  for (const i of all) i.start();
  await Promise.all(all.map((i) => i.waitForSync()));
}

export async function stopInformers(informers: Informers): Promise<void> {
  await Promise.all((Object.values(informers) as Array<Informer<never>>).map((i) => i.stop()));
}
