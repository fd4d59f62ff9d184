import type { BGPPeer, BGPPeerSpec } from "../api/index.js";
import { ANNOTATIONS } from "../api/index.js";
import type { TopologyNode } from "./topology.js";

const RR = ANNOTATIONS.routeReflectorClusterID;

export function nodes(
  n: number,
  opts: { v6?: boolean; reflectors?: Record<number, string> } = {},
): TopologyNode[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `node-${String(i + 1).padStart(2, "0")}`,
    labels: { rack: i % 2 === 0 ? "a" : "b", idx: String(i + 1) },
    annotations: (opts.reflectors?.[i + 1] ? { [RR]: opts.reflectors[i + 1] } : {}) as Record<string, string>,
    underlayIPv4: `10.0.0.${i + 1}`,
    ...(opts.v6 ? { underlayIPv6: `fd00::${(i + 1).toString(16)}` } : {}),
  }));
}

export function peer(name: string, spec: BGPPeerSpec): BGPPeer {
  return { apiVersion: "weft.dev/v1alpha1", kind: "BGPPeer", metadata: { name }, spec };
}
