import { join } from "node:path";
import { type IPPool, PLURALS } from "../api/index.js";
import { ROUTE_PROTOCOL_BGP } from "../bgp/index.js";
import { DEFAULT_ETCD_PREFIX, DEFAULT_FLANNEL_PREFIX } from "../datastore/index.js";
import {
  type ClusterNetwork,
  type Mode,
  repoRoot,
  type TestEtcd,
  type TopoNode,
  tool,
} from "../devenv/index.js";

/** What the lab builds for a MODE and DATASTORE, and what it tells the user to look at. No I/O. */

export const MODES: readonly Mode[] = ["vxlan", "host-gw", "bgp", "bgp-rr"];
export const DATASTORES = ["kubernetes", "etcd"] as const;
export type Datastore = (typeof DATASTORES)[number];
/** Pod address families: IPv4, both, or IPv6 only (the underlay is dual-stack for the last two). */
export const STACKS = ["ipv4", "dual", "ipv6"] as const;
export type Stack = (typeof STACKS)[number];
/** One underlay subnet, or two joined by a router (CrossSubnet: direct inside one, VXLAN across). */
export const TOPOLOGIES = ["one-subnet", "two-subnets"] as const;
export type Topology = (typeof TOPOLOGIES)[number];

export const LAB_CIDR = "10.244.0.0/16";
export const LAB_CIDR_V6 = "fd00:10:244::/56";

export interface LabChoice {
  mode: Mode;
  datastore: Datastore;
  stack: Stack;
  topology: Topology;
}

/** Why a combination cannot work, or undefined. */
export function choiceProblem(c: LabChoice): string | undefined {
  if (c.topology === "two-subnets" && c.mode !== "vxlan")
    return `TOPOLOGY=two-subnets needs MODE=vxlan (CrossSubnet: direct routes inside a subnet, VXLAN across); ${c.mode} routes across the router only if the router learns the pods' routes`;
  return undefined;
}

/** The families of the lab's pods. */
export function podFamilies(stack: Stack): Array<"ipv4" | "ipv6"> {
  return stack === "ipv4" ? ["ipv4"] : stack === "ipv6" ? ["ipv6"] : ["ipv4", "ipv6"];
}

export const familiesOf = (stack: Stack): Array<4 | 6> =>
  stack === "ipv4" ? [4] : stack === "ipv6" ? [6] : [4, 6];

/**
 * The lab's pools, one per family of the stack. On etcd, VXLAN and host-gw IPv4 run the Flannel
 * way (one /24 per node, NodeSubnet), so the controller also writes Flannel's leases under
 * /coreos.com/network for Flannel tooling. With two underlay subnets the VXLAN pools are
 * CrossSubnet.
 */
export function labPools(net: ClusterNetwork, c: LabChoice): IPPool[] {
  const flannelLike = c.datastore === "etcd" && (c.mode === "vxlan" || c.mode === "host-gw");
  const cross = c.topology === "two-subnets" ? { crossSubnet: true } : {};
  const pools: IPPool[] = [];
  if (c.stack !== "ipv6")
    pools.push(
      net.pool("default", LAB_CIDR, c.mode, {
        ...(flannelLike ? { allocation: "NodeSubnet", blockSize: 24 } : {}),
        ...cross,
      }),
    );
  if (c.stack !== "ipv4") pools.push(net.pool("default-ipv6", LAB_CIDR_V6, c.mode, cross));
  return pools;
}

export interface HintContext {
  mode: Mode;
  datastore: Datastore;
  stack?: Stack;
  topology?: Topology;
  /** The outside host's namespace and address. */
  outside?: { ns: string; ip: string };
  kubeconfig: string;
  runDir: string;
  /** The node the examples look at. */
  node: TopoNode;
  /** The lab's etcd (datastore etcd). */
  etcd?: TestEtcd | undefined;
}

/** Shell-quotes a word only when it needs it (paths here are plain). */
const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);

/** Commands to look at the running lab, each with a comment saying what it shows. */
export function hints(c: HintContext): string[] {
  const { node } = c;
  const lines: string[] = [];
  const add = (cmd: string, why?: string) => lines.push(why ? `  ${cmd.padEnd(60)} # ${why}` : `  ${cmd}`);
  add(`export KUBECONFIG=${c.kubeconfig}`, c.datastore === "etcd" ? "Node and Pod objects" : undefined);
  if (c.datastore === "etcd" && c.etcd) {
    add("kubectl get nodes,pods -o wide");
    const etcdctl = [tool("etcdctl"), ...c.etcd.etcdctlFlags()].map(q).join(" ");
    add(`${etcdctl} get ${DEFAULT_ETCD_PREFIX} --prefix --keys-only`, "every weft.dev object");
    add(`${etcdctl} get ${DEFAULT_FLANNEL_PREFIX} --prefix`, "Flannel's network config and subnet leases");
    add(
      `${etcdctl} get ${DEFAULT_ETCD_PREFIX}/${PLURALS.RouteIntent}/${node.name} --print-value-only`,
      `how other nodes reach ${node.name}`,
    );
  } else {
    add("kubectl get weft");
    add(`kubectl get routeintent ${node.name} -o yaml`, `how other nodes reach ${node.name}`);
    add("kubectl get ipamblocks -o yaml", "each pod's address with its namespace/name");
    add(`kubectl wait --for=condition=Ready ippool/${c.stack === "ipv6" ? "default-ipv6" : "default"}`);
    add(
      `kubectl get nodenetworkstatus ${node.name} -o jsonpath='{.status.underlay}{"\\n"}{.status.nat}{"\\n"}'`,
      "underlay MTU, pod MTU, outgoing NAT",
    );
    if (c.topology === "two-subnets")
      add(
        `kubectl get nodenetworkstatus ${node.name} -o jsonpath='{.status.peerPaths}'`,
        "Direct inside its subnet, VXLAN across",
      );
  }
  const inNode = (cmd: string) => `ip netns exec ${node.ns} ${cmd}`;
  if (c.stack !== "ipv4") add(inNode("ip -6 route"), "IPv6 routes");
  if (c.outside)
    add(
      `ip netns exec ${c.outside.ns} ip addr show eth0`,
      `the outside host (${c.outside.ip}): pods reach it masqueraded`,
    );
  add(`ip netns exec ${node.ns} nft list table inet weft`, "the agent's one NAT table (natOutgoing)");
  switch (c.mode) {
    case "vxlan":
      add(inNode("ip route"), "a node's kernel state");
      {
        // on etcd the lab is Flannel's profile: the device is Flannel's name for VNI 1
        const dev = c.datastore === "etcd" ? "flannel.1" : "weft.vxlan";
        add(inNode(`ip neigh show dev ${dev}`));
        add(`bridge -n ${node.ns} fdb show dev ${dev}`);
      }
      break;
    case "host-gw":
      add(inNode("ip route"), "other nodes' pods via their underlay address on eth0");
      break;
    case "bgp":
    case "bgp-rr": {
      const birdc = `birdc -s ${join(c.runDir, node.name, "bird", "bird.ctl")}`;
      add(inNode(`${birdc} show protocols`), "BIRD's sessions on this node");
      add(inNode(`${birdc} show route`), "routes BIRD learned and exports");
      add(inNode(`ip route show proto ${ROUTE_PROTOCOL_BGP}`), "routes BIRD put into the kernel");
      if (c.datastore === "kubernetes") {
        const weftctl = `node ${join(repoRoot, "dist", "cli", "main.js")}`;
        add(`${weftctl} node status`, "sessions, like calicoctl node status");
        add(
          `${weftctl} bgp topology`,
          c.mode === "bgp-rr" ? "nodes 1 and 2 are the reflectors" : "full mesh",
        );
        add(`${weftctl} bgp topology -o dot`, "the same as Graphviz DOT");
      }
      break;
    }
  }
  add(`cat ${join(c.runDir, `agent-${node.name}.log`)}`);
  return lines;
}
