import { tryCanonicalAddress } from "../net/index.js";

/**
 * Which LoadBalancer ingress addresses a node announces one by one (pure). A Service with
 * externalTrafficPolicy Local is announced only from the nodes that hold a ready endpoint of it,
 * so external routers send its traffic where it is served without a second hop (and the client's
 * address survives). With policy Cluster every Service node serves it, and the
 * serviceLoadBalancerIPs range each of them announces already covers the address.
 */

/** The least of a core Service this needs (k8s.V1Service fits). */
export interface ServiceLike {
  metadata?: { name?: string; namespace?: string };
  spec?: { type?: string; externalTrafficPolicy?: string };
  status?: { loadBalancer?: { ingress?: Array<{ ip?: string }> } };
}

/** The least of a discovery.k8s.io/v1 EndpointSlice this needs. */
export interface EndpointSliceLike {
  metadata?: { namespace?: string; labels?: Record<string, string> };
  endpoints?: Array<{ nodeName?: string; conditions?: { ready?: boolean } }>;
}

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** `namespace/name` of the Services with a ready endpoint on `node`. */
export function servicesWithLocalEndpoints(node: string, slices: readonly EndpointSliceLike[]): Set<string> {
  const out = new Set<string>();
  for (const s of slices) {
    const svc = s.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (!svc) continue;
    // a missing ready condition means unknown, which EndpointSlice consumers take as ready
    if ((s.endpoints ?? []).some((e) => e.nodeName === node && e.conditions?.ready !== false))
      out.add(`${s.metadata?.namespace ?? ""}/${svc}`);
  }
  return out;
}

/** Ingress addresses (canonical text, sorted) of the Local-policy LoadBalancers served on `node`. */
export function localLoadBalancerIngress(
  node: string,
  services: readonly ServiceLike[],
  slices: readonly EndpointSliceLike[],
): string[] {
  const local = servicesWithLocalEndpoints(node, slices);
  const out = new Set<string>();
  for (const svc of services) {
    if (svc.spec?.type !== "LoadBalancer" || svc.spec.externalTrafficPolicy !== "Local") continue;
    if (!local.has(`${svc.metadata?.namespace ?? ""}/${svc.metadata?.name ?? ""}`)) continue;
    for (const i of svc.status?.loadBalancer?.ingress ?? []) {
      const ip = tryCanonicalAddress(i.ip);
      if (ip) out.add(ip.text);
    }
  }
  return [...out].sort();
}
