import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { startDetached, stopPid } from "./procs.js";

const execFileP = promisify(execFile);

/** Runs `ip` (iproute2) and returns stdout; errors carry ip's stderr. */
export async function ip(args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP("ip", args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(" ")}: ${e.stderr?.trim() || e.message}`);
  }
}

/** Runs a command inside a network namespace. */
export async function nsExec(ns: string, cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP("ip", ["netns", "exec", ns, cmd, ...args], {
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw Object.assign(new Error(`[${ns}] ${cmd} ${args.join(" ")}: ${e.stderr?.trim() || e.message}`), {
      stdout: e.stdout,
    });
  }
}

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${what} needs root (network namespaces, netlink): run it as root, e.g. 'sudo make test'`,
    );
  }
}

export interface TopoNode {
  name: string;
  ns: string;
  underlayIP: string;
  /** Set when the underlay is dual-stack. */
  underlayIPv6?: string;
  /** Which underlay subnet (bridge) the node sits on: 0 or 1. */
  subnet: number;
}

export interface TopoPod {
  name: string;
  ns: string;
  node: TopoNode;
  /** The pod's first address (IPv4 when it has one). */
  ip: string;
  /** Every address of the pod, IPv4 first. */
  ips?: string[];
  hostVeth: string;
  /** Set for pods made through weft-cni. */
  containerID?: string;
}

/** A host TCP port bridged into node namespaces through a unix socket. */
export interface PortBridge {
  name: string;
  port: number;
  sock: string;
  forwardScript: string;
}

/** Host-side veth name of a pod: `weft` + 11 hex chars of a hash of its sandbox id (docs/architecture.md, "Names"). */
export function hostVethName(sandboxId: string): string {
  return `weft${createHash("sha256").update(sandboxId).digest("hex").slice(0, 11)}`;
}

export interface TopologyOptions {
  /** IPv4 underlay, or IPv4 and IPv6 on every underlay link (default ipv4). */
  stack?: "ipv4" | "dual";
  /**
   * One underlay subnet (a bridge), or two joined by the underlay namespace acting as a router;
   * with two, nodes alternate between them (odd nodes on the first). Default 1.
   */
  subnets?: 1 | 2;
  /**
   * An "outside" host behind the router (198.51.100.10, 2001:db8:0:100::10 with a dual stack):
   * the underlay namespace routes between the node subnets and it, nodes route to it by default.
   */
  outside?: boolean;
}

/** The underlay's address plan (documentation ranges; they exist only inside these namespaces). */
export const UNDERLAY = {
  subnets: [
    { v4: "192.0.2", v6: "2001:db8:0:1" },
    { v4: "203.0.113", v6: "2001:db8:0:2" },
  ],
  outside: { v4: "198.51.100", v6: "2001:db8:0:100" },
  /** Host part of the router on every subnet; nodes are 10 + their index, the outside host 10. */
  router: 1,
} as const;

/**
 * A cluster network in network namespaces: an underlay namespace holding a bridge per underlay
 * subnet, one namespace per node attached to one of them, pods as namespaces behind veths. Every
 * name starts with `prefix`, so a test (with its pid in the prefix) or the lab can remove exactly
 * what it made. Underlay addresses come from the documentation ranges (192.0.2.0/24,
 * 203.0.113.0/24, 198.51.100.0/24, 2001:db8::/32) and exist only inside these namespaces; with
 * two subnets or an outside host the underlay namespace routes between them, and it has no route
 * anywhere else.
 */
export class NetnsTopology {
  readonly underlayNs: string;
  readonly nodes = new Map<string, TopoNode>();
  readonly pods = new Map<string, TopoPod>();
  readonly pids: number[] = [];
  /** Host ports bridged into the node namespaces, so a joining node gets them too. */
  readonly bridges: PortBridge[] = [];
  readonly options: Required<TopologyOptions>;
  private hosts = 0;

  constructor(
    readonly prefix: string,
    readonly runDir: string,
    options: TopologyOptions = {},
  ) {
    this.underlayNs = `${prefix}-underlay`;
    this.options = {
      stack: options.stack ?? "ipv4",
      subnets: options.subnets ?? 1,
      outside: options.outside ?? false,
    };
  }

  get dual(): boolean {
    return this.options.stack === "dual";
  }

  /** Whether the underlay namespace routes (between two subnets, or to the outside host). */
  get routed(): boolean {
    return this.options.subnets === 2 || this.options.outside;
  }

  /** The outside host's namespace and addresses (options.outside). */
  get outside(): { ns: string; ip: string; ipv6?: string } {
    return {
      ns: `${this.prefix}-outside`,
      ip: `${UNDERLAY.outside.v4}.10`,
      ...(this.dual ? { ipv6: `${UNDERLAY.outside.v6}::10` } : {}),
    };
  }

  /** Namespace of a node or pod: its name, prefixed unless it already carries the prefix. */
  nsName(name: string): string {
    return name.startsWith(`${this.prefix}-`) ? name : `${this.prefix}-${name}`;
  }

  get namespaces(): string[] {
    return [
      this.underlayNs,
      ...[...this.nodes.values()].map((n) => n.ns),
      ...[...this.pods.values()].map((p) => p.ns),
    ];
  }

  async createUnderlay(): Promise<void> {
    const u = this.underlayNs;
    await ip(["netns", "add", u]);
    await ip(["-n", u, "link", "set", "lo", "up"]);
    for (let i = 0; i < this.options.subnets; i++) {
      const br = `br${i}`;
      await ip(["-n", u, "link", "add", br, "type", "bridge"]);
      await ip(["-n", u, "link", "set", br, "up"]);
      if (!this.routed) continue;
      const net = UNDERLAY.subnets[i]!;
      await ip(["-n", u, "addr", "add", `${net.v4}.${UNDERLAY.router}/24`, "dev", br]);
      if (this.dual)
        await ip(["-n", u, "addr", "add", `${net.v6}::${UNDERLAY.router}/64`, "dev", br, "nodad"]);
    }
    if (!this.routed) return;
    await nsExec(u, "sysctl", ["-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
    if (!this.options.outside) return;
    const o = this.outside;
    const net = UNDERLAY.outside;
    await ip(["netns", "add", o.ns]);
    await ip(["-n", o.ns, "link", "set", "lo", "up"]);
    await ip(["-n", u, "link", "add", "out0", "type", "veth", "peer", "name", "eth0", "netns", o.ns]);
    await ip(["-n", u, "addr", "add", `${net.v4}.${UNDERLAY.router}/24`, "dev", "out0"]);
    await ip(["-n", o.ns, "addr", "add", `${o.ip}/24`, "dev", "eth0"]);
    if (o.ipv6) {
      await ip(["-n", u, "addr", "add", `${net.v6}::${UNDERLAY.router}/64`, "dev", "out0", "nodad"]);
      await ip(["-n", o.ns, "addr", "add", `${o.ipv6}/64`, "dev", "eth0", "nodad"]);
    }
    await ip(["-n", u, "link", "set", "out0", "up"]);
    await ip(["-n", o.ns, "link", "set", "eth0", "up"]);
    // The outside host knows the router, never the pods: a reply to a pod address it has not seen
    // masqueraded needs a route a test adds on purpose.
    await ip(["-n", o.ns, "route", "add", "default", "via", `${net.v4}.${UNDERLAY.router}`]);
    if (o.ipv6)
      await ip(["-n", o.ns, "-6", "route", "add", "default", "via", `${net.v6}::${UNDERLAY.router}`]);
  }

  async addNode(name: string): Promise<TopoNode> {
    const index = this.nodes.size + 1;
    const subnet = this.options.subnets === 2 && index % 2 === 0 ? 1 : 0;
    const net = UNDERLAY.subnets[subnet]!;
    const node: TopoNode = {
      name,
      ns: this.nsName(name),
      underlayIP: `${net.v4}.${10 + index}`,
      ...(this.dual ? { underlayIPv6: `${net.v6}::${10 + index}` } : {}),
      subnet,
    };
    await ip(["netns", "add", node.ns]);
    await ip(["-n", node.ns, "link", "set", "lo", "up"]);
    await ip([
      "-n",
      node.ns,
      "link",
      "add",
      "eth0",
      "type",
      "veth",
      "peer",
      "name",
      `port${index}`,
      "netns",
      this.underlayNs,
    ]);
    await ip(["-n", this.underlayNs, "link", "set", `port${index}`, "master", `br${subnet}`, "up"]);
    await ip(["-n", node.ns, "addr", "add", `${node.underlayIP}/24`, "dev", "eth0"]);
    if (node.underlayIPv6)
      await ip(["-n", node.ns, "addr", "add", `${node.underlayIPv6}/64`, "dev", "eth0", "nodad"]);
    await ip(["-n", node.ns, "link", "set", "eth0", "up"]);
    // IPv6 forwarding too: an IPv6 pool may arrive on an IPv4 underlay (VXLAN carries it)
    await nsExec(node.ns, "sysctl", [
      "-qw",
      "net.ipv4.ip_forward=1",
      "net.ipv4.conf.all.rp_filter=0",
      "net.ipv6.conf.all.forwarding=1",
    ]);
    if (this.routed) {
      await ip(["-n", node.ns, "route", "add", "default", "via", `${net.v4}.${UNDERLAY.router}`]);
      if (node.underlayIPv6)
        await ip(["-n", node.ns, "-6", "route", "add", "default", "via", `${net.v6}::${UNDERLAY.router}`]);
    }
    this.nodes.set(name, node);
    return node;
  }

  /**
   * A host that is not a node (an external router) on the underlay bridge: its own namespace
   * `prefix-name` with eth0 at `address`/24. Removed with the rest by destroy().
   */
  async addHost(name: string, address: string): Promise<string> {
    const ns = this.nsName(name);
    const port = `hp${++this.hosts}`;
    await ip(["netns", "add", ns]);
    await ip(["-n", ns, "link", "set", "lo", "up"]);
    await ip([
      "-n",
      ns,
      "link",
      "add",
      "eth0",
      "type",
      "veth",
      "peer",
      "name",
      port,
      "netns",
      this.underlayNs,
    ]);
    await ip(["-n", this.underlayNs, "link", "set", port, "master", "br0", "up"]);
    await ip(["-n", ns, "addr", "add", `${address}/24`, "dev", "eth0"]);
    await ip(["-n", ns, "link", "set", "eth0", "up"]);
    return ns;
  }

  /**
   * Makes the apiserver at 127.0.0.1:port reachable as 127.0.0.1:port inside every node namespace,
   * through a unix socket (see forward.ts). Call after the nodes exist.
   */
  async bridgeApiserver(port: number, forwardScript: string): Promise<void> {
    await this.bridgePort("apiserver", port, forwardScript);
  }

  /**
   * Makes a TCP service on the host's 127.0.0.1:port (the apiserver, an etcd) reachable as
   * 127.0.0.1:port inside every node namespace, through one unix socket named after `name` (see
   * forward.ts). Call after the nodes exist; nodes added later get it through bridgeNode().
   */
  async bridgePort(name: string, port: number, forwardScript: string): Promise<void> {
    const sock = join(this.runDir, `${name}.sock`);
    const hostLog = name === "apiserver" ? "fwd-host.log" : `fwd-host-${name}.log`;
    this.pids.push(
      startDetached(
        process.execPath,
        [forwardScript, `unix:${sock}`, `tcp:127.0.0.1:${port}`],
        join(this.runDir, hostLog),
      ).pid,
    );
    const bridge = { name, port, sock, forwardScript };
    this.bridges.push(bridge);
    for (const node of this.nodes.values()) this.startNodeForwarder(node, bridge);
  }

  /** Every bridged port inside one node's namespace (for a node added after bridgePort). */
  bridgeNode(name: string): void {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no node ${name}`);
    for (const bridge of this.bridges) this.startNodeForwarder(node, bridge);
  }

  private startNodeForwarder(node: TopoNode, bridge: PortBridge): void {
    const log = bridge.name === "apiserver" ? `fwd-${node.name}.log` : `fwd-${bridge.name}-${node.name}.log`;
    this.pids.push(
      startDetached(
        "ip",
        [
          "netns",
          "exec",
          node.ns,
          process.execPath,
          bridge.forwardScript,
          `tcp:127.0.0.1:${bridge.port}`,
          `unix:${bridge.sock}`,
        ],
        join(this.runDir, log),
      ).pid,
    );
  }

  /**
   * A pod's own namespace (loopback up) and its veth pair: eth0 inside, the host end in the node's
   * namespace, both down and unaddressed. Callers wire the addresses and routes their way.
   */
  async plugPod(node: TopoNode, podName: string, podIP: string): Promise<TopoPod> {
    const pod: TopoPod = {
      name: podName,
      ns: this.nsName(podName),
      node,
      ip: podIP,
      hostVeth: hostVethName(`${this.prefix}/${podName}`),
    };
    await ip(["netns", "add", pod.ns]);
    await ip(["-n", pod.ns, "link", "set", "lo", "up"]);
    await ip([
      "-n",
      node.ns,
      "link",
      "add",
      pod.hostVeth,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      pod.ns,
    ]);
    return pod;
  }

  /**
   * A pod wired the way weft-cni wires one (until the CNI plugin does it): a /32 on eth0, default
   * route via 169.254.1.1 onlink with a permanent neighbor entry for it (the host veth's MAC, so no
   * proxy ARP is needed and the node needs no route to 169.254.1.1), and a /32 host route to the veth.
   */
  async addPod(nodeName: string, podName: string, podIP: string): Promise<TopoPod> {
    const node = this.nodes.get(nodeName);
    if (!node) throw new Error(`no node ${nodeName}`);
    const pod = await this.plugPod(node, podName, podIP);
    await ip(["-n", node.ns, "link", "set", pod.hostVeth, "up"]);
    const [link] = JSON.parse(await ip(["-n", node.ns, "-json", "link", "show", pod.hostVeth])) as Array<{
      address: string;
    }>;
    await ip(["-n", pod.ns, "addr", "add", `${podIP}/32`, "dev", "eth0"]);
    await ip(["-n", pod.ns, "link", "set", "eth0", "up"]);
    await ip(["-n", pod.ns, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"]);
    await ip([
      "-n",
      pod.ns,
      "neigh",
      "add",
      "169.254.1.1",
      "lladdr",
      link!.address,
      "dev",
      "eth0",
      "nud",
      "permanent",
    ]);
    await ip(["-n", pod.ns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0", "onlink"]);
    await ip(["-n", node.ns, "route", "add", `${podIP}/32`, "dev", pod.hostVeth, "scope", "link"]);
    this.pods.set(podName, pod);
    return pod;
  }

  /** The underlay router's address on a node's subnet (a routed topology). */
  routerFor(node: TopoNode, family: 4 | 6 = 4): string {
    const net = UNDERLAY.subnets[node.subnet]!;
    return family === 4 ? `${net.v4}.${UNDERLAY.router}` : `${net.v6}::${UNDERLAY.router}`;
  }

  /** One ping from a pod to an address; true when a reply came back. */
  async ping(from: TopoPod, toIP: string, timeoutSec = 2): Promise<boolean> {
    try {
      await nsExec(from.ns, "ping", ["-c", "1", "-W", String(timeoutSec), toIP]);
      return true;
    } catch {
      return false;
    }
  }

  /** Stops every process it started (by pid) and deletes every namespace it made. */
  async destroy(): Promise<void> {
    await Promise.all(this.pids.splice(0).map((pid) => stopPid(pid, 3000)));
    await removeNamespaces(this.prefix);
  }
}

/** Deletes every network namespace whose name starts with `prefix-` (leftovers of a killed run too). */
export async function removeNamespaces(prefix: string): Promise<void> {
  const list = await ip(["netns", "list"]).catch(() => "");
  const names = list
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(`${prefix}-`));
  for (const n of names) await ip(["netns", "del", n]).catch(() => undefined);
}
