import * as k8s from "@kubernetes/client-node";
import type {
  BGPConfiguration,
  BGPPeer,
  Condition,
  IPAMBlock,
  IPPool,
  IPReservation,
  NodeNetworkStatus,
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
  /** The agents' reports (BGP session states for BGPPeer and BGPConfiguration status). */
  nodeStatuses: Informer<NodeNetworkStatus>;
  reservations: Informer<IPReservation>;
}

export interface ControllerContext {
  store: Store;
  kc: k8s.KubeConfig;
  informers: Informers;
  /** Direct read, for nodes the (possibly label-filtered) cache does not hold. */
  nodeExists?(name: string): Promise<boolean>;
  /** The Flannel network Weft shares (etcd datastore with Flannel leases); absent otherwise. */
  flannel?: FlannelProfile;
}

/**
 * What a Flannel network in the same etcd means for IPAM, RouteIntents and pool status
 * (controllers/flannel keeps it from Flannel's config and leases). Every answer is from memory.
 */
export interface FlannelProfile {
  /**
   * The subnet a node keeps in this pool (its lease in etcd) and the annotations its block gets
   * (the lease it came from, the VTEP MAC the lease names).
   */
  subnetFor(pool: string, node: string): { cidr: string; annotations: Record<string, string> } | undefined;
  /** Blocks of the pool this node may not claim (other hosts' leases, subnets flanneld never hands out). */
  unavailable(pool: string, node: string): { has(cidr: string): boolean } | undefined;
  /** Pools whose blocks keep their first address from pods (Flannel's VTEP or network address). */
  reservesFirstAddress(pool: string): boolean;
  /** VXLAN settings of the pool when Flannel's replace Weft's defaults (VNI, port, device name). */
  vxlan(pool: IPPool): { vni: number; port: number; device: string } | undefined;
  /** RouteIntents written by the Flannel part (nodes flanneld runs): others leave them alone. */
  ownsIntent(name: string): boolean;
  /** Conditions the pool's status carries for Flannel (FlannelCompatible). */
  poolConditions(pool: string): Array<Pick<Condition, "type" | "status" | "reason" | "message">>;
  /**
   * Resolves after a pass that read etcd after this call: a lease flanneld wrote a moment ago is
   * then in the answers above (a node registering right after its flanneld took a lease).
   */
  refresh(): Promise<void>;
  /** Called with the nodes and pools whose answers may have changed. */
  onChange(listener: (change: { nodes: string[]; pools: string[] }) => void): void;
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
    nodeStatuses: cache.kind("NodeNetworkStatus"),
    reservations: cache.kind("IPReservation"),
  };
}
