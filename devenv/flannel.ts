/**
 * flanneld as a peer of a Weft cluster in the netns lab: the real daemon (built by
 * install-tools.sh) runs inside a node namespace against the lab's etcd, and its pods are wired
 * the way Flannel's CNI chain does it (a cni0 bridge holding the subnet's first host address,
 * pods on veths with an address of the subnet). Nothing here talks to anything outside the
 * namespaces the lab made.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ClusterNetwork } from "./clusternet.js";
import type { EtcdServer } from "./etcd.js";
import { startDetached, stopPid, waitFor } from "./procs.js";
import { tool } from "./tools.js";
import { ip, type NetnsTopology, type TopoNode, type TopoPod } from "./topology.js";

/** Flannel's network config as a user writes it by hand (Flannel's defaults: VNI 1, port 8472). */
export function flannelConfig(network: string, backend: "vxlan" | "host-gw", subnetLen = 24): string {
  return JSON.stringify({ Network: network, SubnetLen: subnetLen, Backend: { Type: backend } });
}

export interface Flanneld {
  node: TopoNode;
  pid: number;
  /** The subnet.env flanneld writes (FLANNEL_SUBNET=…). */
  subnetFile: string;
  log: string;
}

/**
 * Starts flanneld in a node's namespace. etcd must be bridged into that namespace (its port on
 * 127.0.0.1, as ClusterNetwork does for the agents); the underlay is eth0.
 */
export function startFlanneld(
  topo: NetnsTopology,
  node: TopoNode,
  etcd: EtcdServer,
  runDir: string,
  prefix = "/coreos.com/network",
): Flanneld {
  const dir = join(runDir, `flannel-${node.name}`);
  mkdirSync(dir, { recursive: true });
  const subnetFile = join(dir, "subnet.env");
  const log = join(runDir, `flanneld-${node.name}.log`);
  const { pid } = startDetached(
    "ip",
    [
      "netns",
      "exec",
      node.ns,
      tool("flanneld"),
      `--etcd-endpoints=${etcd.client.endpoints.join(",")}`,
      `--etcd-cafile=${etcd.client.ca}`,
      `--etcd-certfile=${etcd.client.cert}`,
      `--etcd-keyfile=${etcd.client.key}`,
      `--etcd-prefix=${prefix}`,
      "--iface=eth0",
      `--public-ip=${node.underlayIP}`,
      "--ip-masq=false",
      "--iptables-forward-rules=false",
      "--healthz-port=0",
      `--subnet-file=${subnetFile}`,
    ],
    log,
  );
  topo.pids.push(pid);
  return { node, pid, subnetFile, log };
}

/** Waits for flanneld to have taken its lease and written subnet.env; returns its subnet (CIDR). */
export async function flanneldSubnet(f: Flanneld, timeoutMs = 60_000): Promise<string> {
  return waitFor(
    `flanneld on ${f.node.name} to write ${f.subnetFile}`,
    () => {
      if (!existsSync(f.subnetFile)) return undefined;
      const m = /^FLANNEL_SUBNET=(\S+)$/m.exec(readFileSync(f.subnetFile, "utf8"));
      return m?.[1];
    },
    timeoutMs,
    200,
  ).catch((err: unknown) => {
    const tail = existsSync(f.log)
      ? readFileSync(f.log, "utf8").trimEnd().split("\n").slice(-15).join("\n")
      : "";
    throw new Error(`${String(err)}\n--- ${f.log}\n${tail}`);
  });
}

/** Stops flanneld (SIGTERM: it leaves its lease and its kernel state, as on a real node). */
export async function stopFlanneld(f: Flanneld): Promise<void> {
  await stopPid(f.pid, 5000);
}

/**
 * A pod on a flanneld node wired like Flannel's CNI chain (bridge plugin): cni0 holds the
 * subnet's .1, the pod gets `.host` of the subnet with cni0 as its gateway. `subnet` is what
 * flanneld wrote (FLANNEL_SUBNET, e.g. 10.244.3.1/24).
 */
export async function addFlannelPod(
  topo: NetnsTopology,
  node: TopoNode,
  podName: string,
  subnet: string,
  host: number,
): Promise<TopoPod> {
  const { base, prefixLen } = subnetBase(subnet);
  const gw = hostAddress(base, 1);
  const podIP = hostAddress(base, host);
  const bridges = JSON.parse(await ip(["-n", node.ns, "-json", "link", "show", "type", "bridge"])) as Array<{
    ifname: string;
  }>;
  if (!bridges.some((b) => b.ifname === "cni0")) {
    await ip(["-n", node.ns, "link", "add", "cni0", "type", "bridge"]);
    await ip(["-n", node.ns, "addr", "add", `${gw}/${prefixLen}`, "dev", "cni0"]);
    await ip(["-n", node.ns, "link", "set", "cni0", "up"]);
  }
  const pod = await topo.plugPod(node, podName, podIP);
  await ip(["-n", node.ns, "link", "set", pod.hostVeth, "master", "cni0", "up"]);
  await ip(["-n", pod.ns, "addr", "add", `${podIP}/${prefixLen}`, "dev", "eth0"]);
  await ip(["-n", pod.ns, "link", "set", "eth0", "up"]);
  await ip(["-n", pod.ns, "route", "add", "default", "via", gw]);
  topo.pods.set(podName, pod);
  return pod;
}

function subnetBase(subnet: string): { base: number; prefixLen: number } {
  const [addr = "", len = "32"] = subnet.split("/");
  const n = addr.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const prefixLen = Number(len);
  const size = 2 ** (32 - prefixLen);
  return { base: n - (n % size), prefixLen };
}

function hostAddress(base: number, host: number): string {
  const n = base + host;
  return [24, 16, 8, 0].map((s) => String(Math.floor(n / 2 ** s) % 256)).join(".");
}

/**
 * A ping that runs from a pod until stopped (5 per second), for counting what a change loses;
 * stop() returns how many were sent and answered. Counts are reported, never asserted on.
 */
export function continuousPing(
  from: TopoPod,
  toIP: string,
): { stop(): Promise<{ sent: number; received: number }> } {
  const child = spawn("ip", ["netns", "exec", from.ns, "ping", "-n", "-i", "0.2", "-W", "1", toIP], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const done = new Promise<void>((resolve) => child.on("close", () => resolve()));
  return {
    async stop() {
      child.kill("SIGINT");
      await done;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0) };
    },
  };
}

/**
 * A host that runs flanneld joins a Weft cluster network: its namespace (with the apiserver and
 * etcd bridged in), flanneld, then its Node object once flanneld holds a lease (as a kubelet
 * registers next to a running flanneld), and `pods` pods wired the Flannel way.
 */
export async function joinFlannelNode(
  net: ClusterNetwork,
  etcd: EtcdServer,
  pods: number,
  prefix = "/coreos.com/network",
): Promise<{ flanneld: Flanneld; subnet: string; pods: TopoPod[] }> {
  const name = net.nodeName(net.topo.nodes.size + 1);
  const node = await net.topo.addNode(name);
  net.topo.bridgeNode(name);
  const flanneld = startFlanneld(net.topo, node, etcd, net.opts.runDir, prefix);
  const subnet = await flanneldSubnet(flanneld);
  await net.createNodeObject(node);
  const made: TopoPod[] = [];
  for (let p = 0; p < pods; p++)
    made.push(await addFlannelPod(net.topo, node, `${name}-pod-${"abcdefgh"[p]}`, subnet, 2 + p));
  return { flanneld, subnet, pods: made };
}
