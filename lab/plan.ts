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

export const LAB_CIDR = "10.244.0.0/16";

/**
 * The lab's pool. On etcd, VXLAN and host-gw run the Flannel way (one /24 per node, NodeSubnet),
 * so the controller also writes Flannel's leases under /coreos.com/network for Flannel tooling.
 */
export function labPool(net: ClusterNetwork, mode: Mode, datastore: Datastore): IPPool {
  const flannelLike = datastore === "etcd" && (mode === "vxlan" || mode === "host-gw");
  return net.pool("default", LAB_CIDR, mode, flannelLike ? { allocation: "NodeSubnet", blockSize: 24 } : {});
}

export interface HintContext {
  mode: Mode;
  datastore: Datastore;
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
    add("kubectl wait --for=condition=Ready ippool/default");
  }
  const inNode = (cmd: string) => `ip netns exec ${node.ns} ${cmd}`;
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
