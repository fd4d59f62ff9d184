import type * as k8s from "@kubernetes/client-node";
import { KubernetesStore } from "./kubernetes.js";
import type { Store } from "./store.js";

export const BACKENDS = ["kubernetes", "etcd"] as const;
export type Backend = (typeof BACKENDS)[number];

/**
 * The Store a component was told to use (flag --datastore or WEFT_DATASTORE). Nodes, pods and
 * leases always come from the Kubernetes API, so kc is needed whatever the backend.
 */
export function createStore(backend: string | undefined, kc: k8s.KubeConfig): Store {
  const which = backend || process.env.WEFT_DATASTORE || "kubernetes";
  switch (which) {
    case "kubernetes":
      return new KubernetesStore(kc);
    case "etcd":
      throw new Error(
        "datastore etcd: the etcd backend is not available in this build yet; use --datastore kubernetes",
      );
    default:
      throw new Error(`unknown datastore ${JSON.stringify(which)}: choose one of ${BACKENDS.join(", ")}`);
  }
}
