import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { ANNOTATIONS, type IPPool, type RouteIntent } from "../api/index.js";
import { ROUTE_PROTOCOL_BGP } from "../bgp/index.js";
import { EtcdStore, KubernetesStore, type Store } from "../datastore/index.js";
import { Assigner } from "../ipam/client/index.js";
import { errorMessage, withConnectionReuse } from "../lib/index.js";
import type { ControlPlaneState } from "./controlplane.js";
import type { EtcdServer } from "./etcd.js";
import { cmdline, startDetached, stopPid, waitFor } from "./procs.js";
import { nativeCniPlugin, repoRoot } from "./tools.js";
import { ip, NetnsTopology, nsExec, type TopologyOptions, type TopoNode, type TopoPod } from "./topology.js";

/** Port of the outside host's whoami server. */
export const WHOAMI_PORT = 8080;

export type Mode = "vxlan" | "host-gw" | "bgp" | "bgp-rr";
export const ENCAPSULATION = { vxlan: "VXLAN", "host-gw": "HostGW", bgp: "BGP", "bgp-rr": "BGP" } as const;

export interface ClusterNetworkOptions {
  /** Prefix of every namespace and the label value that scopes this cluster's controller. */
  id: string;
  runDir: string;
  cp: ControlPlaneState;
  /** Controller flags beyond the defaults (e.g. a short GC grace). */
  controllerArgs?: string[];
  /**
   * Modes bgp/bgp-rr: the first N nodes carry weft.dev/route-reflector-cluster-id from their
   * creation (bgp-rr: 2), so the cluster starts with reflectors and without the mesh.
   */
  routeReflectors?: number;
  /**
   * Where weft.dev objects live (default kubernetes). With "etcd", `etcd` is required: the
   * controller and agents get its WEFT_ETCD_* environment, its port is bridged into every node
   * namespace, and `store` reads and writes it. Node and Pod objects stay in the apiserver.
   */
  datastore?: "kubernetes" | "etcd";
  etcd?: EtcdServer;
  /** etcd datastore: key prefix of weft.dev objects (default /weft/v1alpha1). */
  etcdPrefix?: string;
  /** Underlay stack, subnets and outside host (see TopologyOptions). */
  topology?: TopologyOptions;
  /** Families pods made through weft-cni get (default ["ipv4"]). */
  podFamilies?: Array<"ipv4" | "ipv6">;
  /**
   * Scope the controller and agents to this cluster's label (default true), so several clusters
   * share one apiserver. The lab owns its apiserver: unscoped, everything applied there is Weft's.
   */
  scoped?: boolean;
  /** Extra agent flags (e.g. --nat=false). */
  agentArgs?: string[];
}

/** Cluster id the harness gives its route reflectors. */
export const RR_CLUSTER_ID = "1.0.0.1";

const CLUSTER_LABEL = "weft.dev/cluster";
const dist = (p: string) => join(repoRoot, "dist", p);

/**
 * A whole Weft cluster network on one machine: nodes are network namespaces on an underlay bridge,
 * each with a real weft-agent inside; one weft-controller; Node and Pod objects in the real
 * apiserver. The controller is scoped with --node-selector/--pool-selector to this cluster's
 * label, so several such clusters (test files) can share one apiserver.
 */
export class ClusterNetwork {
  readonly topo: NetnsTopology;
  readonly kc: k8s.KubeConfig;
  readonly core: k8s.CoreV1Api;
  /** The weft.dev objects of this cluster, in the apiserver or in etcd (options.datastore). */
  readonly store: Store;
  private controllerPid: number | undefined;
  private readonly agentPids = new Map<string, number>();
  private assigner: Assigner | undefined;
  /** Nodes taken away by removeNode(), whose API objects destroy() still removes. */
  private readonly removed = new Set<string>();

  constructor(readonly opts: ClusterNetworkOptions) {
    mkdirSync(opts.runDir, { recursive: true });
    this.topo = new NetnsTopology(opts.id, opts.runDir, opts.topology);
    this.kc = new k8s.KubeConfig();
    this.kc.loadFromFile(opts.cp.kubeconfig);
    withConnectionReuse(this.kc);
    this.core = this.kc.makeApiClient(k8s.CoreV1Api);
    if (opts.datastore === "etcd") {
      if (!opts.etcd) throw new Error("ClusterNetwork: datastore etcd needs the etcd option (an EtcdServer)");
      this.store = new EtcdStore({
        ...opts.etcd.client,
        ...(opts.etcdPrefix ? { prefix: opts.etcdPrefix } : {}),
      });
    } else {
      this.store = new KubernetesStore(this.kc);
    }
  }

  /** Environment of the controller and the agents: the etcd datastore's WEFT_* variables, if any. */
  private componentEnv(): NodeJS.ProcessEnv {
    if (this.opts.datastore !== "etcd" || !this.opts.etcd) return process.env;
    return { ...process.env, ...this.opts.etcd.env(this.opts.etcdPrefix) };
  }

  get labels(): Record<string, string> {
    return { [CLUSTER_LABEL]: this.opts.id };
  }

  nodeName(i: number): string {
    return `${this.opts.id}-node-${i}`;
  }

  private get scoped(): boolean {
    return this.opts.scoped ?? true;
  }

  /** An IPPool scoped to this cluster's nodes (unscoped cluster: for every node). */
  pool(name: string, cidr: string, mode: Mode, extra: Partial<IPPool["spec"]> = {}): IPPool {
    return {
      apiVersion: "weft.dev/v1alpha1",
      kind: "IPPool",
      metadata: { name, ...(this.scoped ? { labels: this.labels } : {}) },
      spec: {
        cidr,
        encapsulation: ENCAPSULATION[mode],
        ...(this.scoped ? { nodeSelector: { matchLabels: this.labels } } : {}),
        ...extra,
      },
    };
  }

  async createPool(pool: IPPool): Promise<void> {
    await this.store.create("IPPool", pool);
  }

  /**
   * Namespaces, apiserver bridge, Node objects, the controller and one agent per node
   * (`components: false`: no controller and no agents, for a network another CNI runs first).
   */
  async up(nodeCount: number, opts: { components?: boolean } = {}): Promise<void> {
    await this.topo.createUnderlay();
    for (let i = 1; i <= nodeCount; i++) await this.topo.addNode(this.nodeName(i));
    await this.topo.bridgeApiserver(Number(new URL(this.opts.cp.server).port), dist("devenv/forward.js"));
    // agents inside the namespaces reach etcd at the same 127.0.0.1 URL its certificate names
    if (this.opts.datastore === "etcd" && this.opts.etcd)
      await this.topo.bridgePort("etcd", this.opts.etcd.port, dist("devenv/forward.js"));
    let k = 0;
    for (const node of this.topo.nodes.values())
      await this.createNodeObject(node, k++ < (this.opts.routeReflectors ?? 0));
    if (opts.components === false) return;
    this.startController();
    for (const node of this.topo.nodes.values()) this.startAgent(node.name);
  }

  /** The Node object of a host in this cluster, with its InternalIP(s) (as a kubelet registers it). */
  async createNodeObject(node: TopoNode, reflector = false): Promise<void> {
    const { name, underlayIP, underlayIPv6 } = node;
    const annotations = reflector ? { [ANNOTATIONS.routeReflectorClusterID]: RR_CLUSTER_ID } : undefined;
    const created = await this.core.createNode({
      body: {
        metadata: { name, labels: { ...this.labels, "kubernetes.io/hostname": name }, annotations },
      },
    });
    // Status is its own subresource, as a kubelet reports it; a status write also replaces
    // metadata, so it carries the whole object.
    await this.core.replaceNodeStatus({
      name,
      body: {
        ...created,
        status: {
          addresses: [
            { type: "InternalIP", address: underlayIP },
            ...(underlayIPv6 ? [{ type: "InternalIP", address: underlayIPv6 }] : []),
            { type: "Hostname", address: name },
          ],
        },
      },
    });
  }

  startController(): void {
    const selector = `${CLUSTER_LABEL}=${this.opts.id}`;
    this.controllerPid = startDetached(
      process.execPath,
      [
        dist("controllers/main.js"),
        `--kubeconfig=${this.opts.cp.kubeconfig}`,
        "--health-port=0",
        "--health-host=127.0.0.1",
        "--leader-elect=false",
        ...(this.scoped ? [`--node-selector=${selector}`, `--pool-selector=${selector}`] : []),
        ...(this.opts.controllerArgs ?? []),
      ],
      join(this.opts.runDir, "controller.log"),
      this.componentEnv(),
    ).pid;
    this.topo.pids.push(this.controllerPid);
  }

  /** Starts (or restarts) the agent of a node inside that node's namespace. */
  startAgent(name: string): number {
    const node = this.topo.nodes.get(name);
    if (!node) throw new Error(`no node ${name}`);
    const pid = startDetached(
      "ip",
      [
        "netns",
        "exec",
        node.ns,
        process.execPath,
        dist("agent/main.js"),
        `--node=${name}`,
        `--kubeconfig=${this.opts.cp.kubeconfig}`,
        "--health-host=127.0.0.1",
        `--run-dir=${join(this.opts.runDir, name)}`,
        `--cni-socket=${this.cniSocket(name)}`,
        ...(this.scoped ? [`--node-selector=${CLUSTER_LABEL}=${this.opts.id}`] : []),
        ...(this.opts.agentArgs ?? []),
      ],
      join(this.opts.runDir, `agent-${name}.log`),
      this.componentEnv(),
    ).pid;
    this.agentPids.set(name, pid);
    this.topo.pids.push(pid);
    return pid;
  }

  /**
   * A node joining a running cluster: namespace, apiserver forwarder, Node object, agent.
   * Returns its name (nodeName(i) with i the next index).
   */
  async joinNode(opts: { reflector?: boolean } = {}): Promise<string> {
    const name = this.nodeName(this.topo.nodes.size + 1);
    const node = await this.topo.addNode(name);
    this.topo.bridgeNode(name);
    await this.createNodeObject(node, opts.reflector ?? false);
    this.startAgent(name);
    return name;
  }

  /**
   * A node that goes away the way a machine does: its agent and BIRD killed, its link down, its
   * Node object deleted. Its namespace stays until destroy(); it is no longer in topo.nodes.
   */
  async removeNode(name: string): Promise<void> {
    const node = this.topo.nodes.get(name);
    if (!node) throw new Error(`no node ${name}`);
    const bird = this.birdPid(name);
    await this.stopAgent(name, "SIGKILL");
    if (bird !== undefined && cmdline(bird).includes("bird")) await stopPid(bird, 1000);
    await ip(["-n", node.ns, "link", "set", "eth0", "down"]);
    await this.core.deleteNode({ name });
    this.topo.nodes.delete(name);
    this.removed.add(name);
  }

  /** Makes a node a route reflector (clusterID undefined: no longer one). */
  async setRouteReflector(name: string, clusterID: string | undefined = RR_CLUSTER_ID): Promise<void> {
    await this.core.patchNode(
      {
        name,
        body: { metadata: { annotations: { [ANNOTATIONS.routeReflectorClusterID]: clusterID ?? null } } },
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
  }

  /** Pid of the BIRD a node's agent runs (from its pid file), if it runs. */
  birdPid(name: string): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.opts.runDir, name, "bird", "bird.pid"), "utf8").trim());
      return Number.isInteger(pid) && pid > 1 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Unix socket through which weft-cni reaches a node's agent (unix sockets cross namespaces). */
  cniSocket(node: string): string {
    return join(this.opts.runDir, `cni-${node}.sock`);
  }

  /** Stops a node's agent; SIGKILL simulates a crash. The kernel state it made stays. */
  async stopAgent(name: string, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const pid = this.agentPids.get(name);
    if (pid === undefined) return;
    if (signal === "SIGKILL") {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    await stopPid(pid, 5000);
    this.agentPids.delete(name);
  }

  async stopController(): Promise<void> {
    if (this.controllerPid !== undefined) await stopPid(this.controllerPid, 5000);
    this.controllerPid = undefined;
  }

  /**
   * Every node has a RouteIntent and every agent reports Ready having applied the current
   * generation of every other node's intent (after a spec change, the new one). The agents of
   * `restarted.nodes` must have reported at or after `restarted.at`: a restarted agent must speak
   * for itself, not by its predecessor's status. (The others rewrite an unchanged status only
   * once a minute, so they are not held to it.)
   */
  async waitConverged(timeoutMs = 60_000, restarted?: { at: Date; nodes: string[] }): Promise<void> {
    const names = [...this.topo.nodes.keys()];
    // lastSyncTime has whole seconds
    const sinceSec = restarted ? Math.floor(restarted.at.getTime() / 1000) * 1000 : 0;
    const mustReport = new Set(restarted?.nodes ?? []);
    // What the last look found missing, so a timeout says which node lagged and how.
    let missing = "nothing checked yet";
    const miss = (why: string) => {
      missing = why;
      return undefined;
    };
    await this.explainOnFailure(
      waitFor(
        "every agent Ready with every other node's current RouteIntent applied",
        async () => {
          const intents = new Map<string, RouteIntent>();
          for (const n of names) {
            const ri = await this.store.get("RouteIntent", n);
            if (!ri) return miss(`no RouteIntent for ${n}`);
            if (ri.spec.routes.length === 0 && ri.spec.encapsulation !== "BGP")
              return miss(`${n}'s RouteIntent has no routes`);
            intents.set(n, ri);
          }
          const lagging: string[] = [];
          for (const n of names) {
            const nns = await this.store.get("NodeNetworkStatus", n);
            const ready = nns?.status?.conditions?.find((c) => c.type === "Ready");
            if (ready?.status !== "True")
              lagging.push(`${n} not Ready: ${ready ? `${ready.reason}: ${ready.message}` : "no condition"}`);
            const synced = nns?.status?.lastSyncTime;
            if (mustReport.has(n) && new Date(synced ?? 0).getTime() < sinceSec)
              lagging.push(`${n} last reported at ${synced}, before ${new Date(sinceSec).toISOString()}`);
            const applied = nns?.status?.appliedIntents ?? {};
            for (const [other, ri] of intents)
              if (other !== n && applied[other] !== ri.metadata.generation)
                lagging.push(
                  `${n} applied ${other}'s RouteIntent generation ${applied[other]}, current ${ri.metadata.generation}`,
                );
          }
          return lagging.length > 0 ? miss(lagging.join("; ")) : true;
        },
        timeoutMs,
        250,
      ).catch((err: unknown) => {
        throw new Error(`${errorMessage(err)}; last look: ${missing}`);
      }),
    );
  }

  /**
   * After a pool's encapsulation changed: every node's RouteIntent says the new one, then every
   * agent has applied those intents (waitConverged), so every kernel has switched.
   */
  async waitSwitched(encapsulation: RouteIntent["spec"]["encapsulation"], timeoutMs = 60_000): Promise<void> {
    const names = [...this.topo.nodes.keys()];
    await this.explainOnFailure(
      waitFor(
        `every node's RouteIntent to say ${encapsulation}`,
        async () => {
          for (const n of names)
            if ((await this.store.get("RouteIntent", n))?.spec.encapsulation !== encapsulation)
              return undefined;
          return true;
        },
        timeoutMs,
        250,
      ),
    );
    await this.waitConverged(timeoutMs);
  }

  /**
   * BGP modes: every node's kernel holds a route learned through BIRD (route protocol
   * ROUTE_PROTOCOL_BGP) to every other node's blocks, so pods on different nodes can talk.
   */
  async waitBgpRoutes(timeoutMs = 60_000): Promise<void> {
    await this.explainOnFailure(
      waitFor(
        "every node's kernel to learn every other node's blocks over BGP",
        async () => {
          const blocks = (await this.store.list("IPAMBlock")).items.filter((b) =>
            this.topo.nodes.has(b.spec.affinity),
          );
          for (const node of this.topo.nodes.values()) {
            const learned = new Set<string>();
            for (const fam of ["-4", "-6"])
              for (const r of JSON.parse(
                await ip(["-n", node.ns, fam, "-json", "route", "show", "proto", String(ROUTE_PROTOCOL_BGP)]),
              ) as Array<{ dst: string }>)
                learned.add(r.dst);
            if (blocks.some((b) => b.spec.affinity !== node.name && !learned.has(b.spec.cidr)))
              return undefined;
          }
          return true;
        },
        timeoutMs,
        250,
      ),
    );
  }

  /** The last lines of the controller's and agents' logs, so a failure says what they saw. */
  logTails(lines = 15): string {
    const out: string[] = [];
    for (const f of readdirSync(this.opts.runDir).filter((f) => f.endsWith(".log") && !f.startsWith("fwd"))) {
      const text = readFileSync(join(this.opts.runDir, f), "utf8").trimEnd().split("\n").slice(-lines);
      out.push(`--- ${f}`, ...text);
    }
    return out.join("\n");
  }

  private async explainOnFailure<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      throw new Error(`${errorMessage(err)}\n${this.logTails()}`);
    }
  }

  private async podAssigner(): Promise<Assigner> {
    if (!this.assigner) {
      this.assigner = new Assigner({ store: this.store, kc: this.kc });
      await this.assigner.start();
    }
    return this.assigner;
  }

  /**
   * A pod on a node: a Pod object (so address GC sees it alive), an address from the node's
   * blocks through the IPAM assignment API, and the veth wiring weft-cni would do.
   */
  async addPod(nodeName: string, podName: string, namespace = "default"): Promise<TopoPod> {
    await this.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: podName, labels: this.labels },
        spec: { nodeName, containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] },
      },
    });
    const assigner = await this.podAssigner();
    const a = await assigner.assign({
      node: nodeName,
      handle: `${this.opts.id}.${podName}.eth0`,
      namespace,
      pod: podName,
      family: 4,
    });
    return this.topo.addPod(nodeName, podName, a.ips[0] as string);
  }

  /**
   * A pod the way a kubelet makes one: a Pod object, a network namespace, and weft-cni ADD run
   * (in the node's namespace) with the CNI_* environment and the network config on stdin.
   */
  async addPodViaCni(nodeName: string, podName: string, namespace = "default"): Promise<TopoPod> {
    const node = this.topo.nodes.get(nodeName);
    if (!node) throw new Error(`no node ${nodeName}`);
    await this.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: podName, labels: this.labels },
        spec: { nodeName, containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] },
      },
    });
    const ns = this.topo.nsName(podName);
    await ip(["netns", "add", ns]);
    const containerID = createHash("sha256").update(`${this.opts.id}/${namespace}/${podName}`).digest("hex");
    const result = await this.cni("ADD", node.ns, containerID, ns, namespace, podName);
    const ips = ((result.ips as Array<{ address: string }> | undefined) ?? [])
      .map((i) => i.address.split("/")[0]!)
      .sort((a, b) => Number(a.includes(":")) - Number(b.includes(":")));
    const hostVeth = (result.interfaces as Array<{ name: string; sandbox?: string }> | undefined)?.find(
      (i) => !i.sandbox,
    )?.name;
    if (!ips[0] || !hostVeth)
      throw new Error(`weft-cni ADD for ${podName} returned no address: ${JSON.stringify(result)}`);
    const pod: TopoPod = { name: podName, ns, node, ip: ips[0], ips, hostVeth, containerID };
    this.topo.pods.set(podName, pod);
    return pod;
  }

  /** weft-cni DEL for a pod made by addPodViaCni; the namespace stays until destroy. */
  async deletePodViaCni(podName: string, namespace = "default"): Promise<void> {
    const pod = this.topo.pods.get(podName);
    if (!pod?.containerID) throw new Error(`no CNI pod ${podName}`);
    await this.cni("DEL", pod.node.ns, pod.containerID, pod.ns, namespace, podName);
    this.topo.pods.delete(podName);
    await ip(["netns", "del", pod.ns]).catch(() => undefined);
  }

  /** Runs the plugin exactly as a runtime does: CNI_* environment, config on stdin, JSON on stdout. */
  async cni(
    command: "ADD" | "DEL" | "CHECK",
    nodeNs: string,
    containerID: string,
    podNs: string,
    namespace: string,
    podName: string,
  ): Promise<Record<string, unknown>> {
    const node = [...this.topo.nodes.values()].find((n) => n.ns === nodeNs);
    const config = {
      cniVersion: "1.0.0",
      name: "weft",
      type: "weft",
      agentSocket: this.cniSocket(node?.name ?? ""),
      families: this.opts.podFamilies ?? ["ipv4"],
    };
    const env = {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerID,
      CNI_NETNS: `/var/run/netns/${podNs}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: "/usr/lib/cni",
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${podName}`,
    };
    const out = await new Promise<string>((resolveOut, reject) => {
      // the plugin the chart installs
      const child = spawn("ip", ["netns", "exec", nodeNs, nativeCniPlugin()], { env });
      let stdout = "";
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
      });
      child.on("error", reject);
      child.on("close", (code) =>
        code === 0
          ? resolveOut(stdout)
          : reject(new Error(`weft-cni ${command} failed (exit ${code}): ${stdout}`)),
      );
      child.stdin.end(JSON.stringify(config));
    });
    return out.trim() ? (JSON.parse(out) as Record<string, unknown>) : {};
  }

  /**
   * Every pod pings every other pod once (at its address of `family`, default the first); returns
   * the matrix and the number of pairs that answered.
   */
  async connectivity(
    family?: 4 | 6,
  ): Promise<{ ok: number; total: number; matrix: Map<string, Map<string, boolean>> }> {
    const pods = [...this.topo.pods.values()];
    const target = (p: TopoPod) =>
      family === undefined ? p.ip : (p.ips ?? [p.ip]).find((a) => a.includes(":") === (family === 6));
    const matrix = new Map<string, Map<string, boolean>>();
    let ok = 0;
    let total = 0;
    for (const from of pods) {
      const row = new Map<string, boolean>();
      const results = await Promise.all(
        pods
          .filter((p) => p !== from)
          .map(async (to) => {
            const dst = target(to);
            return [to.name, dst !== undefined && (await this.topo.ping(from, dst, 2))] as const;
          }),
      );
      for (const [to, up] of results) {
        row.set(to, up);
        total++;
        if (up) ok++;
      }
      matrix.set(from.name, row);
    }
    return { ok, total, matrix };
  }

  /**
   * connectivity(), asked again until every pair answers or `timeoutMs` passes (the last result
   * is returned either way): for right after a change that drops and re-learns routes.
   */
  async waitConnectivity(
    timeoutMs = 30_000,
    family?: 4 | 6,
  ): Promise<{ ok: number; total: number; matrix: Map<string, Map<string, boolean>> }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = await this.connectivity(family);
      if (result.ok === result.total || Date.now() > deadline) return result;
    }
  }

  /**
   * Starts a server on the outside host (topology.outside) that answers each TCP connection with
   * the address it came from: what the outside world sees of a pod.
   */
  startWhoami(port = WHOAMI_PORT): void {
    const { ns } = this.topo.outside;
    this.topo.pids.push(
      startDetached(
        "ip",
        ["netns", "exec", ns, process.execPath, dist("devenv/whoami.js"), "serve", String(port)],
        join(this.opts.runDir, "whoami.log"),
      ).pid,
    );
  }

  /** The address the outside host saw a connection from `pod` come from (family 4 or 6). */
  async whoami(pod: TopoPod, family: 4 | 6 = 4, port = WHOAMI_PORT): Promise<string> {
    const o = this.topo.outside;
    const host = family === 4 ? o.ip : o.ipv6;
    if (!host) throw new Error("the outside host has no IPv6 address (topology stack ipv4)");
    return (
      await nsExec(pod.ns, process.execPath, [dist("devenv/whoami.js"), "ask", host, String(port)])
    ).trim();
  }

  /** Lets go of in-process watches (the processes and namespaces keep running): the lab exits after this. */
  async detach(): Promise<void> {
    await this.assigner?.stop();
    this.assigner = undefined;
    this.closeStore();
  }

  /** An etcd store holds a gRPC connection that would keep the process alive. */
  private closeStore(): void {
    if (this.store instanceof EtcdStore) this.store.close();
  }

  /** Stops every process and removes every namespace and API object it made. */
  async destroy(): Promise<void> {
    await this.assigner?.stop().catch(() => undefined);
    // BIRD is a child of its agent; one adopted after an agent restart is not, so stop it by pid
    const birds = [...this.topo.nodes.keys()].map((n) => this.birdPid(n)).filter((p) => p !== undefined);
    await this.topo.destroy();
    // Once the agents are gone nothing restarts BIRD; any left that runs from this cluster's
    // directory (one restarted after its pid file was read) is found by its command line.
    for (const pid of new Set([...birds, ...pidsRunningFrom(this.opts.runDir)])) {
      if (cmdline(pid).includes("bird")) await stopPid(pid, 3000);
    }
    try {
      const sel = `${CLUSTER_LABEL}=${this.opts.id}`;
      const pods = await this.core
        .listPodForAllNamespaces({ labelSelector: sel })
        .catch(() => ({ items: [] as k8s.V1Pod[] }));
      for (const p of pods.items) {
        await this.core
          .deleteNamespacedPod({
            name: p.metadata!.name!,
            namespace: p.metadata!.namespace!,
            gracePeriodSeconds: 0,
          })
          .catch(() => undefined);
      }
      for (const n of [...this.topo.nodes.keys(), ...this.removed]) {
        await this.core.deleteNode({ name: n }).catch(() => undefined);
        for (const kind of ["RouteIntent", "NodeNetworkStatus"] as const)
          await this.store.delete(kind, n).catch(() => undefined);
      }
      const pools = (await this.store.list("IPPool")).items.filter(
        (p) => !this.scoped || p.metadata.labels?.[CLUSTER_LABEL] === this.opts.id,
      );
      const poolNames = new Set(pools.map((p) => p.metadata.name));
      for (const b of (await this.store.list("IPAMBlock")).items) {
        if (
          poolNames.has(b.spec.pool) ||
          this.topo.nodes.has(b.spec.affinity) ||
          this.removed.has(b.spec.affinity)
        ) {
          await this.store.delete("IPAMBlock", b.metadata.name).catch(() => undefined);
        }
      }
      for (const p of pools) {
        await this.store
          .mutate("IPPool", p.metadata.name, (cur) => ({
            ...cur,
            metadata: { ...cur.metadata, finalizers: [] },
          }))
          .catch(() => undefined);
        await this.store.delete("IPPool", p.metadata.name).catch(() => undefined);
      }
    } finally {
      this.closeStore();
    }
  }
}

/** Renders a connectivity matrix and the closing line the lab and CI logs show. */
export function formatConnectivity(
  result: {
    ok: number;
    total: number;
    matrix: Map<string, Map<string, boolean>>;
  },
  family?: 4 | 6,
): string {
  const names = [...result.matrix.keys()];
  const width = Math.max(...names.map((n) => n.length), 4);
  const lines = [`${"".padEnd(width)}  ${names.map((n) => n.padEnd(width)).join(" ")}`];
  for (const from of names) {
    const row = result.matrix.get(from)!;
    lines.push(
      `${from.padEnd(width)}  ${names.map((to) => (to === from ? "-" : row.get(to) ? "ok" : "FAIL").padEnd(width)).join(" ")}`,
    );
  }
  lines.push(`connectivity${family ? ` (IPv${family})` : ""}: ${result.ok}/${result.total} pairs ok`);
  return lines.join("\n");
}

/** Pids of processes whose command line mentions `dir/` (by /proc, so also children of dead parents). */
function pidsRunningFrom(dir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    if (cmdline(Number(entry)).includes(`${dir}/`)) out.push(Number(entry));
  }
  return out;
}
