import * as k8s from "@kubernetes/client-node";
import type {
  BGPConfiguration,
  BGPPeer,
  IPAMBlock,
  IPPool,
  IPReservation,
  RouteIntent,
} from "../api/index.js";
import type { Store } from "../datastore/index.js";
import type { Informer, InformerCache } from "../runtime/index.js";

/** The caches every reconciler of weft-controller reads from; one informer per kind, shared. */
export interface Informers {
  nodes: Informer<k8s.V1Node>;
  pods: Informer<k8s.V1Pod>;
  pools: Informer<IPPool>;
  blocks: Informer<IPAMBlock>;
  intents: Informer<RouteIntent>;
  bgpConfigs: Informer<BGPConfiguration>;
  bgpPeers: Informer<BGPPeer>;
  reservations: Informer<IPReservation>;
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

/** The controller's informers, taken from the process's cache (created there; started by the Manager). */
export function controllerInformers(cache: InformerCache): Informers {
  return {
    nodes: cache.nodes(),
    pods: cache.pods(),
    pools: cache.kind("IPPool"),
    blocks: cache.kind("IPAMBlock"),
    intents: cache.kind("RouteIntent"),
    bgpConfigs: cache.kind("BGPConfiguration"),
    bgpPeers: cache.kind("BGPPeer"),
    reservations: cache.kind("IPReservation"),
  };
}
