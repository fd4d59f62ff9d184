import {
  type Encapsulation,
  type IntentFDB,
  type IntentNeighbor,
  type IntentRoute,
  type RouteIntentSpec,
  type UnderlayAddresses,
  type VTEP,
  VXLAN_DEVICE,
} from "../../api/index.js";
import { type Family, familyOfValid } from "../../net/index.js";

/** One block of a node together with how its pool reaches it. */
export interface NodeBlock {
  cidr: string;
  encapsulation: Encapsulation;
  /** The pool routes directly inside an underlay subnet and encapsulates only across (VXLAN, IPIP). */
  crossSubnet?: boolean;
  /** For messages: the block's object name and its pool. */
  name?: string;
  pool?: string;
}

export interface IntentInput {
  node: string;
  /** The node's underlay address per family (at least one). */
  underlay: Pick<UnderlayAddresses, 4 | 6>;
  blocks: NodeBlock[];
  /**
   * Present when the node has a VXLAN block: its VTEP addresses (one per family in use) and MAC
   * (device: weft.vxlan when unset).
   */
  vtep?: VTEP;
  /** The node's underlay subnets as its agent reported them (CrossSubnet). */
  underlaySubnets?: string[];
}

export interface IntentResult {
  spec: RouteIntentSpec;
  /** Blocks left out of the routes, each naming the block and why (a route never mixes families). */
  leftOut: string[];
}

const isV6 = (cidr: string) => familyOfValid(cidr) === 6;

/**
 * How every other node reaches this node's pods. VXLAN is Flannel's "one route per block, one ARP,
 * one FDB", per family: an IPv6 block goes via the node's IPv6 VTEP address (an NDP entry on the
 * same device and MAC, the same FDB entry over the IPv4 underlay). Host-gw is a plain route via the
 * node's underlay address of the block's family. BGP and IPIP blocks have no route here because
 * BIRD (or the IPIP tunnel, where supported) distributes them. A block whose family the node lacks
 * an address for is left out and named in `leftOut`: a route never mixes families.
 */
export function computeRouteIntent(input: IntentInput): IntentResult {
  const blocks = [...input.blocks].sort((a, b) => a.cidr.localeCompare(b.cidr));
  const routes: IntentRoute[] = [];
  const neighbors: IntentNeighbor[] = [];
  const fdb: IntentFDB[] = [];
  const leftOut: string[] = [];
  const underlayIP = input.underlay[4] ?? input.underlay[6];
  if (!underlayIP) throw new Error(`node ${input.node} has no underlay address`);
  const what = (b: NodeBlock) =>
    `IPAMBlock ${b.name ?? b.cidr}${b.pool ? ` (pool ${b.pool})` : ""}: IPv${isV6(b.cidr) ? 6 : 4} block`;
  const underlayOf = (b: NodeBlock) => input.underlay[isV6(b.cidr) ? 6 : 4];
  const vxlanBlocks = blocks.filter((b) => b.encapsulation === "VXLAN");
  const vtepFamilies = new Set<Family>();
  if (vxlanBlocks.length > 0) {
    const vtep = input.vtep;
    if (!vtep) throw new Error(`node ${input.node} has VXLAN blocks but no VTEP address`);
    const device = vtep.device ?? VXLAN_DEVICE;
    for (const b of vxlanBlocks) {
      const v6 = isV6(b.cidr);
      const gateway = v6 ? vtep.ipv6 : vtep.ip;
      if (!gateway) {
        leftOut.push(`${what(b)} but the node has no IPv${v6 ? 6 : 4} VTEP address`);
        continue;
      }
      vtepFamilies.add(v6 ? 6 : 4);
      const direct = b.crossSubnet ? underlayOf(b) : undefined;
      routes.push({
        dst: b.cidr,
        gateway,
        device,
        onlink: true,
        ...(direct ? { direct } : {}),
      });
    }
    for (const f of [4, 6] as const) {
      const ip = f === 4 ? vtep.ip : vtep.ipv6;
      if (ip && vtepFamilies.has(f)) neighbors.push({ ip, mac: vtep.mac, device });
    }
    if (vtepFamilies.size > 0) fdb.push({ mac: vtep.mac, dst: underlayIP, device });
  }
  for (const b of blocks) {
    if (b.encapsulation !== "HostGW") continue;
    const gateway = underlayOf(b);
    if (gateway) routes.push({ dst: b.cidr, gateway });
    else leftOut.push(`${what(b)} but the node has no IPv${isV6(b.cidr) ? 6 : 4} underlay address`);
  }
  const crossSubnet = blocks.some((b) => b.crossSubnet && b.encapsulation === "VXLAN");
  const vtep = input.vtep && vtepFamilies.size > 0 ? usedVtep(input.vtep, vtepFamilies) : undefined;
  return {
    spec: {
      node: input.node,
      underlayIP,
      ...(input.underlay[6] ? { underlayIPv6: input.underlay[6] } : {}),
      ...(crossSubnet && input.underlaySubnets?.length ? { underlaySubnets: input.underlaySubnets } : {}),
      encapsulation: dominantEncapsulation(blocks),
      ...(vtep ? { vtep } : {}),
      routes,
      neighbors,
      fdb,
    },
    leftOut,
  };
}

/** The VTEP with the addresses of the families its routes use. */
function usedVtep(v: VTEP, families: Set<Family>): VTEP {
  return {
    ...(v.ip && families.has(4) ? { ip: v.ip } : {}),
    ...(v.ipv6 && families.has(6) ? { ipv6: v.ipv6 } : {}),
    mac: v.mac,
    vni: v.vni,
    port: v.port,
    ...(v.mtu !== undefined ? { mtu: v.mtu } : {}),
    ...(v.device !== undefined ? { device: v.device } : {}),
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
