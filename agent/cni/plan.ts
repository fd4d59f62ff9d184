/**
 * What a pod's network looks like, as pure functions of its addresses: the pod-side commands,
 * the CNI result, and the comparison CHECK makes against what the kernel reports.
 */
import type { CniResult } from "../../cni/index.js";
import { FAMILY_BITS, familyOfValid } from "../../net/index.js";
import { GATEWAY_V4, GATEWAY_V6, HOST_VETH_MAC } from "./names.js";

export interface PodWiring {
  containerId: string;
  netns: string;
  ifname: string;
  hostVeth: string;
  podMac: string;
  /** bare addresses, v4 and/or v6 */
  ips: string[];
  mtu?: number;
}

const isV6 = (ip: string) => familyOfValid(ip) === 6;
export const hostPrefix = (ip: string) => `${ip}/${FAMILY_BITS[familyOfValid(ip)]}`;
export const gatewayFor = (ip: string) => (isV6(ip) ? GATEWAY_V6 : GATEWAY_V4);

/**
 * iproute2 batch for inside the pod: every line is a replace, so running it again converges
 * instead of failing. The default route is onlink via the fake gateway, which the permanent
 * neighbor entry resolves to the host veth without any ARP/ND.
 */
export function podBatch(w: PodWiring): string {
  const lines = ["link set lo up", `link set ${w.ifname} up`];
  for (const ip of w.ips) {
    const v6 = isV6(ip);
    lines.push(`addr replace ${hostPrefix(ip)} dev ${w.ifname}${v6 ? " nodad" : ""}`);
  }
  for (const v6 of [false, true]) {
    if (!w.ips.some((ip) => isV6(ip) === v6)) continue;
    const gw = v6 ? GATEWAY_V6 : GATEWAY_V4;
    lines.push(`neigh replace ${gw} lladdr ${HOST_VETH_MAC} dev ${w.ifname} nud permanent`);
    lines.push(`route replace default via ${gw} dev ${w.ifname} onlink`);
  }
  return `${lines.join("\n")}\n`;
}

export function buildResult(w: PodWiring, cniVersion: string, dns?: CniResult["dns"]): CniResult {
  return {
    cniVersion,
    interfaces: [
      { name: w.hostVeth, mac: HOST_VETH_MAC },
      { name: w.ifname, mac: w.podMac, sandbox: w.netns, ...(w.mtu ? { mtu: w.mtu } : {}) },
    ],
    ips: w.ips.map((ip) => ({ address: hostPrefix(ip), gateway: gatewayFor(ip), interface: 1 })),
    routes: [
      ...(w.ips.some((ip) => !isV6(ip)) ? [{ dst: "0.0.0.0/0", gw: GATEWAY_V4 }] : []),
      ...(w.ips.some(isV6) ? [{ dst: "::/0", gw: GATEWAY_V6 }] : []),
    ],
    dns: dns ?? {},
  };
}

/** The pod side as iproute2 prints it with -j (only the fields CHECK reads). */
export interface ObservedPod {
  /** `ip -j addr show dev IF` */
  addrs: Array<{
    ifname?: string;
    flags?: string[];
    addr_info?: Array<{ local: string; prefixlen: number }>;
  }>;
  /** `ip -j route show` (both families) */
  routes: Array<{ dst: string; gateway?: string; dev?: string; flags?: string[] }>;
  /** `ip -j neigh show dev IF` (both families) */
  neighbors: Array<{ dst: string; lladdr?: string; state?: string[] }>;
}

/** Everything that differs from the wiring, as sentences for the CNI error's details. */
export function podProblems(w: PodWiring, seen: ObservedPod): string[] {
  const problems: string[] = [];
  const link = seen.addrs.find((a) => a.ifname === w.ifname);
  if (!link) return [`interface ${w.ifname} is missing in ${w.netns}`];
  if (!link.flags?.includes("UP")) problems.push(`interface ${w.ifname} is down`);
  const have = new Set((link.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
  for (const ip of w.ips) {
    if (!have.has(hostPrefix(ip))) problems.push(`address ${hostPrefix(ip)} is missing on ${w.ifname}`);
  }
  for (const v6 of [false, true]) {
    if (!w.ips.some((ip) => isV6(ip) === v6)) continue;
    const gw = v6 ? GATEWAY_V6 : GATEWAY_V4;
    const route = seen.routes.find((r) => r.dst === "default" && r.gateway === gw && r.dev === w.ifname);
    if (!route) problems.push(`default route via ${gw} dev ${w.ifname} is missing`);
    const neigh = seen.neighbors.find((n) => n.dst === gw);
    if (!neigh || neigh.lladdr !== HOST_VETH_MAC || !neigh.state?.includes("PERMANENT")) {
      problems.push(`permanent neighbor ${gw} -> ${HOST_VETH_MAC} is missing`);
    }
  }
  return problems;
}
