import {
  type Encapsulation,
  type IntentFDB,
  type IntentNeighbor,
  type IntentRoute,
  type RouteIntentSpec,
  type UnderlayAddresses,
  VXLAN_DEVICE,
} from "../../api/index.js";
import { type Family, familyOfValid } from "../../net/index.js";

/** One block of a node together with how its pool reaches it. */
export interface NodeBlock {
  cidr: string;
  encapsulation: Encapsulation;
}

export interface IntentInput {
  node: string;
  underlayIP: string;
  blocks: NodeBlock[];
  /** Present when the node has a VXLAN block: its VTEP address and MAC (device: weft.vxlan when unset). */
  vtep?: { ip: string; mac: string; vni: number; port: number; device?: string };
}

/**
 * How every other node reaches this node's pods. VXLAN is Flannel's "one route per block, one ARP,
 * one FDB"; host-gw is a plain route via the underlay address; BGP and IPIP blocks have no route
 * here because BIRD (or the IPIP tunnel, where supported) distributes them.
 */
export function computeRouteIntent(input: IntentInput): RouteIntentSpec {
  const blocks = [...input.blocks].sort((a, b) => a.cidr.localeCompare(b.cidr));
  const routes: IntentRoute[] = [];
  const neighbors: IntentNeighbor[] = [];
  const fdb: IntentFDB[] = [];
  const vxlanBlocks = blocks.filter((b) => b.encapsulation === "VXLAN");
  if (vxlanBlocks.length > 0) {
    if (!input.vtep) throw new Error(`node ${input.node} has VXLAN blocks but no VTEP address`);
    const { ip, mac } = input.vtep;
    const device = input.vtep.device ?? VXLAN_DEVICE;
    for (const b of vxlanBlocks) routes.push({ dst: b.cidr, gateway: ip, device, onlink: true });
    neighbors.push({ ip, mac, device });
    fdb.push({ mac, dst: input.underlayIP, device });
  }
  for (const b of blocks) {
    if (b.encapsulation === "HostGW") routes.push({ dst: b.cidr, gateway: input.underlayIP });
  }
  return {
    node: input.node,
    underlayIP: input.underlayIP,
    encapsulation: dominantEncapsulation(blocks),
    ...(vxlanBlocks.length > 0 && input.vtep ? { vtep: input.vtep } : {}),
    routes,
    neighbors,
    fdb,
  };
}

/** The encapsulation most of the node's blocks use (VXLAN when the node has none yet). */
function dominantEncapsulation(blocks: NodeBlock[]): Encapsulation {
  const counts = new Map<Encapsulation, number>();
  for (const b of blocks) counts.set(b.encapsulation, (counts.get(b.encapsulation) ?? 0) + 1);
  let best: Encapsulation = "VXLAN";
  let bestCount = 0;
  for (const [e, c] of counts) {
    if (c > bestCount) [best, bestCount] = [e, c];
  }
  return best;
}

/**
 * The underlay address a node's intent names (an intent has one): the node's address of the family
 * its blocks use — IPv4 unless every block is IPv6, since the VTEP and Flannel are IPv4 — or, on a
 * node with an underlay of the other family only, that one.
 */
export function intentUnderlayIP(
  underlay: UnderlayAddresses,
  blocks: readonly NodeBlock[],
): string | undefined {
  const want: Family = blocks.length > 0 && blocks.every((b) => familyOfValid(b.cidr) === 6) ? 6 : 4;
  return underlay[want] ?? underlay[want === 4 ? 6 : 4];
}
