/** Shared shapes of the weft.dev/v1alpha1 API (all kinds are cluster-scoped). */
import { cel, ObjectNameSchema, PATTERNS, type TypeSchema } from "./schema.js";

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

/**
 * A standard Kubernetes condition.
 * @remarks Every status carries them with observedGeneration (GitOps health).
 */
export interface Condition {
  /** Condition type in CamelCase, such as Ready. */
  type: string;
  /** True, False or Unknown. */
  status: "True" | "False" | "Unknown";
  /** Machine-readable CamelCase reason for the last transition. */
  reason: string;
  /** Human-readable details; may be empty. */
  message: string;
  /** When the status last changed. */
  lastTransitionTime: string;
  /** The metadata.generation the condition was computed from. */
  observedGeneration?: number;
}

/** A metadata.generation, or a count. */
export const CountSchema: TypeSchema<number> = { format: "int64", minimum: 0 };

export const ConditionSchema: TypeSchema<Condition> = {
  fields: {
    type: {
      minLength: 1,
      maxLength: 316,
      pattern: String.raw`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$`,
    },
    reason: { minLength: 1, maxLength: 1024, pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$" },
    message: { maxLength: 32768 },
    lastTransitionTime: { format: "date-time" },
    observedGeneration: CountSchema,
  },
};

/** The conditions list of every status: one entry per type. */
export const ConditionsSchema: TypeSchema<Condition[]> = {
  maxItems: 16,
  listType: "map",
  listMapKeys: ["type"],
};

/** One requirement on a label. */
export interface LabelSelectorRequirement {
  /** The label key the requirement applies to. */
  key: string;
  /** In, NotIn, Exists or DoesNotExist. */
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  /** Values for In and NotIn; empty for Exists and DoesNotExist. */
  values?: string[];
}

export const LabelSelectorRequirementSchema: TypeSchema<LabelSelectorRequirement> = {
  validations: [
    {
      rule: cel`
        self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 :
        !has(self.values) || size(self.values) == 0`,
      fieldPath: ".values",
      message: "values must be non-empty for In and NotIn and empty for Exists and DoesNotExist",
    },
  ],
  fields: {
    key: { minLength: 1, maxLength: 317, pattern: PATTERNS.labelKey },
    values: {
      maxItems: 64,
      listType: "atomic",
      items: { maxLength: 63, pattern: PATTERNS.labelValue },
    },
  },
};

/** A label selector of nodes: matchLabels and matchExpressions, all of which must hold. */
export interface LabelSelector {
  /** Labels a node must carry, key to exact value. */
  matchLabels?: Record<string, string>;
  /** Requirements a node's labels must meet; all of them (AND). */
  matchExpressions?: LabelSelectorRequirement[];
}

export const LabelSelectorSchema: TypeSchema<LabelSelector> = {
  mapType: "atomic",
  fields: {
    matchLabels: {
      maxProperties: 64,
      values: { maxLength: 63, pattern: PATTERNS.labelValue },
      validations: [
        {
          rule: cel`
            self.all(k, size(k) <= 317 &&
            k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'))`,
          message: "every key of matchLabels must be a label key such as kubernetes.io/os",
        },
      ],
    },
    matchExpressions: { maxItems: 32, listType: "atomic" },
  },
};

/**
 * The namespace Weft's components run in when POD_NAMESPACE does not say (the chart's release
 * namespace by default): where the controller's leader-election Lease lives, and where a Secret
 * reference without a namespace points.
 */
export const DEFAULT_NAMESPACE = "kube-system";

/** Reference to a key of a Secret (BGP passwords). */
export interface SecretKeyRef {
  /** Name of the Secret. */
  name: string;
  /** Namespace of the Secret; unset means the namespace Weft runs in. */
  namespace?: string;
  /** Key of the Secret's data that holds the password. */
  key: string;
}

export const SecretKeyRefSchema: TypeSchema<SecretKeyRef> = {
  fields: {
    name: ObjectNameSchema,
    namespace: { maxLength: 63, pattern: PATTERNS.dnsLabel },
    key: { minLength: 1, maxLength: 253, pattern: "^[-._a-zA-Z0-9]+$" },
  },
};

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
  IPReservation: "ipreservations",
} as const;

export type Kind = keyof typeof PLURALS;

/** Annotations and labels Weft reads or writes. */
export const ANNOTATIONS = {
  underlayIP: "weft.dev/underlay-ip",
  routeReflectorClusterID: "weft.dev/route-reflector-cluster-id",
  vtepMAC: "weft.dev/vtep-mac",
  /**
   * On a RouteIntent: the Flannel subnet lease (`10.244.3.0-24`) it was made from, for a node
   * flanneld runs; weft-controller's Flannel part writes such intents and keeps them while the
   * lease lives. Also a label, so `kubectl get ri -l weft.dev/flannel-lease` lists them.
   */
  flannelLease: "weft.dev/flannel-lease",
  /** On a pod or a namespace (the pod's wins): a JSON list of the IPv4 pools to take addresses from. */
  ipv4Pools: "weft.dev/ipv4pools",
  /** On a pod or a namespace (the pod's wins): a JSON list of the IPv6 pools to take addresses from. */
  ipv6Pools: "weft.dev/ipv6pools",
  /** On a pod: a JSON list of the pod's fixed addresses, at most one per family. */
  ipAddresses: "weft.dev/ip-addresses",
} as const;

export const FINALIZERS = {
  pool: "weft.dev/pool-drain",
} as const;
