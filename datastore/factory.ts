import type * as k8s from "@kubernetes/client-node";
import { EtcdStore } from "./etcd.js";
import { type EtcdConnectionOptions, etcdOptionsFromEnv } from "./etcdconfig.js";
import { KubernetesStore } from "./kubernetes.js";
import type { Store } from "./store.js";

export const BACKENDS = ["kubernetes", "etcd"] as const;
export type Backend = (typeof BACKENDS)[number];

export interface CreateStoreOptions {
  /** etcd backend: where etcd is; default from WEFT_ETCD_ENDPOINTS, _CA, _CERT, _KEY, _PREFIX. */
  etcd?: EtcdConnectionOptions;
  /** kubernetes backend: who the apiserver records in managedFields (weft-controller, weft-agent, weftctl). */
  fieldManager?: string;
}

/**
 * The Store a component was told to use (flag --datastore or WEFT_DATASTORE). Nodes, pods and
 * leases always come from the Kubernetes API, so kc is needed whatever the backend.
 */
export function createStore(
  backend: string | undefined,
  kc: k8s.KubeConfig,
  opts: CreateStoreOptions = {},
): Store {
  const which = backend || process.env.WEFT_DATASTORE || "kubernetes";
  switch (which) {
    case "kubernetes":
      return new KubernetesStore(kc, opts.fieldManager ? { fieldManager: opts.fieldManager } : {});
    case "etcd":
      return new EtcdStore(opts.etcd ?? etcdOptionsFromEnv());
    default:
      throw new Error(`unknown datastore ${JSON.stringify(which)}: choose one of ${BACKENDS.join(", ")}`);
  }
}
