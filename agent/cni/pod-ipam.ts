import * as k8s from "@kubernetes/client-node";
import { ANNOTATIONS } from "../../api/index.js";
import { isIpamError, type PodIpamRequest, podIpamRequest } from "../../ipam/index.js";
import { AssignmentRefused, type PodIpamSource, type PodRef } from "./assigner.js";

const notFound = (err: unknown) => err instanceof k8s.ApiException && err.code === 404;

/**
 * What a pod asks of the IPAM, read from the Kubernetes API when its sandbox is added: the pod
 * itself (`get`, never cached: each ADD is a new sandbox) and its namespace (`get`, cached for a
 * few seconds because every pod of a namespace reads the same object). The agent's RBAC grants
 * `get` on pods and namespaces and nothing more (no list, no watch).
 */
export class KubePodIpam implements PodIpamSource {
  private readonly core: k8s.CoreV1Api;
  private readonly namespaces = new Map<
    string,
    { at: number; annotations: Record<string, string> | undefined }
  >();
  private readonly namespaceReads = new Map<string, Promise<Record<string, string> | undefined>>();

  constructor(
    kc: k8s.KubeConfig,
    /** How long a namespace's annotations are reused (default 5 s). */
    private readonly namespaceTtlMs = 5000,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  async lookup(
    namespace: string,
    name: string,
  ): Promise<{ pod: PodRef; request: PodIpamRequest } | undefined> {
    let pod: k8s.V1Pod;
    try {
      pod = await this.core.readNamespacedPod({ namespace, name });
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
    const podRef: PodRef = { namespace, name, ...(pod.metadata?.uid ? { uid: pod.metadata.uid } : {}) };
    const podAnnotations = pod.metadata?.annotations;
    const nsAnnotations = needsNamespace(podAnnotations)
      ? await this.namespaceAnnotations(namespace)
      : undefined;
    try {
      const request = podIpamRequest({
        pod: { namespace, name, annotations: podAnnotations },
        namespace: { name: namespace, annotations: nsAnnotations },
      });
      return { pod: podRef, request };
    } catch (err) {
      if (isIpamError(err, "InvalidAnnotation"))
        throw new AssignmentRefused("InvalidAnnotation", err.message);
      throw err;
    }
  }

  private async namespaceAnnotations(name: string): Promise<Record<string, string> | undefined> {
    const hit = this.namespaces.get(name);
    if (hit && Date.now() - hit.at < this.namespaceTtlMs) return hit.annotations;
    // A burst of sandboxes of one namespace shares one read.
    let reading = this.namespaceReads.get(name);
    if (!reading) {
      reading = (async () => {
        let annotations: Record<string, string> | undefined;
        try {
          annotations = (await this.core.readNamespace({ name })).metadata?.annotations;
        } catch (err) {
          if (!notFound(err)) throw err;
        }
        this.namespaces.set(name, { at: Date.now(), annotations });
        if (this.namespaces.size > 10_000) this.namespaces.clear();
        return annotations;
      })().finally(() => this.namespaceReads.delete(name));
      this.namespaceReads.set(name, reading);
    }
    return reading;
  }
}

/** The namespace only matters when the pod does not name pools of both families itself. */
function needsNamespace(annotations: Record<string, string> | undefined): boolean {
  return (
    annotations?.[ANNOTATIONS.ipv4Pools] === undefined || annotations?.[ANNOTATIONS.ipv6Pools] === undefined
  );
}
