/** Shared shapes of the weft.dev/v1alpha1 API (all kinds are cluster-scoped). */
export const GROUP = "weft.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

export interface ObjectMeta {
  name: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: Array<{
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
  }>;
}

/** A standard Kubernetes condition; every status carries them with observedGeneration (GitOps health). */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** Reference to a key of a Secret (BGP passwords). */
export interface SecretKeyRef {
  name: string;
  namespace?: string;
  key: string;
}

export interface WeftObject<K extends string, Spec, Status = undefined> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

/** Plural resource names, as the CRDs declare them. */
export const PLURALS = {
  IPPool: "ippools",
  IPAMBlock: "ipamblocks",
  RouteIntent: "routeintents",
  NodeNetworkStatus: "nodenetworkstatuses",
  BGPConfiguration: "bgpconfigurations",
  BGPPeer: "bgppeers",
} as const;

export type Kind = keyof typeof PLURALS;

/** Annotations and labels Weft reads or writes. */
export const ANNOTATIONS = {
  underlayIP: "weft.dev/underlay-ip",
  routeReflectorClusterID: "weft.dev/route-reflector-cluster-id",
  vtepMAC: "weft.dev/vtep-mac",
} as const;

export const FINALIZERS = {
  pool: "weft.dev/pool-drain",
} as const;
