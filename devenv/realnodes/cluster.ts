import { execFile } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { clientCert } from "../certs.js";
import {
  type ControlPlaneState,
  kubectl,
  readState,
  startControlPlane,
  stopControlPlane,
} from "../controlplane.js";
import { type BuiltImage, buildImages, type ImageSet } from "../images/build.js";
import { PAUSE_IMAGE } from "../images/recipes.js";
import { alive, cmdline, startDetached, stopPid, waitFor } from "../procs.js";
import { repoRoot, systemTool, tool } from "../tools.js";
import { ip, NetnsTopology, removeNamespaces, requireRoot } from "../topology.js";
import {
  bootstrapManifests,
  certKubeconfig,
  containerdConfig,
  corefile,
  egressSelectorConfig,
  kubeletConfig,
  kubeProxyArgs,
  nodePaths,
  POD_CIDR,
  SERVICE_CIDR,
} from "./config.js";
import { NodeCgroups, NodeMountNamespace, startInNode } from "./host.js";
import { copyRoot, templateRoot } from "./imagestore.js";

const execFileP = promisify(execFile);
const dist = (p: string) => join(repoRoot, "dist", p);

/**
 * A Kubernetes cluster of real nodes on one machine. The control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler, CoreDNS) runs on this host and in the underlay
 * namespace; each node is a network namespace on the underlay bridge with its own containerd,
 * kubelet and kube-proxy in a mount namespace of its own. Addresses exist only inside those
 * namespaces (192.0.2.0/24, TEST-NET-1; Services 10.96.0.0/24); nothing is routed elsewhere.
 *
 * Everything started is written to a state file as it starts, with the owner's pid: a run that
 * was killed is torn down by the next start (reapRealClusters), by pid and by name.
 */

/** The hub: the underlay namespace's own address, where the apiserver is advertised and CoreDNS listens. */
export const HUB_IP = "192.0.2.1";
export const UNDERLAY_CIDR = "192.0.2.0/24";
const TMP_PREFIX = "weft-rn-";

export interface RealNodeState {
  name: string;
  ns: string;
  ip: string;
  dir: string;
  mountFile: string;
  cgroupRoot: string;
  /** Daemons in start order: containerd, kubelet, kube-proxy. */
  pids: Array<{ what: string; pid: number }>;
}

export interface RealClusterState {
  id: string;
  dir: string;
  ownerPid?: number;
  cpDir: string;
  underlayNs: string;
  mountDir: string;
  kubeconfig: string;
  /** Host and hub processes in start order (forwarders, egress proxy, controllers, CoreDNS). */
  pids: Array<{ what: string; pid: number }>;
  nodes: RealNodeState[];
}

export interface RealClusterOptions {
  /** Prefix of every namespace, cgroup and name (keep it short: interface names are derived). */
  id: string;
  /** Directory for state, certificates, configs and logs; fresh under the temp dir when omitted. */
  dir?: string;
  ownerPid?: number;
  /**
   * Install Debian's reference `bridge` + `host-local` plugins as each node's CNI, so nodes turn
   * Ready without Weft (a baseline; Weft's chart replaces the conflist when installed).
   */
  referenceCni?: boolean;
  /** More images for every node's containerd beside the standard set (e.g. an earlier Weft's). */
  extraImages?: Promise<BuiltImage[]>;
}

export interface Timings {
  imagesSeconds: number;
  controlPlaneSeconds: number;
  /** Per node: kubelet start to the Node's Ready condition (only with a CNI present). */
  nodeReadySeconds: Record<string, number>;
  totalSeconds: number;
}

function stateFile(dir: string): string {
  return join(dir, "realnodes.json");
}

export function readClusterState(dir: string): RealClusterState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(dir), "utf8")) as RealClusterState;
  } catch {
    return undefined;
  }
}

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    return (await execFileP(cmd, args, { maxBuffer: 64 << 20 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")}: ${e.stderr?.trim() || e.message}`);
  }
}

/** The reference conflist's name when it must win over an installed plugin's (10-weft.conflist). */
const REFERENCE_FIRST = "00-reference.conflist";

/** Debian's `bridge` + `host-local` (+ `portmap`) on bridge cni0 with the node's own 10.88.N.0/24. */
function referenceConflist(index: number): string {
  const conf = {
    cniVersion: "1.0.0",
    name: "reference",
    plugins: [
      {
        type: "bridge",
        bridge: "cni0",
        isGateway: true,
        ipMasq: false,
        ipam: { type: "host-local", ranges: [[{ subnet: `10.88.${index}.0/24` }]] },
      },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
  return JSON.stringify(conf, null, 2);
}

export class RealCluster {
  readonly state: RealClusterState;
  readonly images: Promise<ImageSet>;
  cp: ControlPlaneState | undefined;
  readonly timings: Timings = {
    imagesSeconds: 0,
    controlPlaneSeconds: 0,
    nodeReadySeconds: {},
    totalSeconds: 0,
  };
  private readonly topo: NetnsTopology;
  private readonly kubeletStarted = new Map<string, number>();
  private template: Promise<string> | undefined;

  private constructor(
    readonly opts: RealClusterOptions,
    images: Promise<ImageSet>,
  ) {
    const dir = opts.dir ?? join(tmpdir(), `${TMP_PREFIX}${opts.id}`);
    mkdirSync(dir, { recursive: true });
    this.topo = new NetnsTopology(opts.id, dir);
    this.images = images;
    this.state = {
      id: opts.id,
      dir,
      ...(opts.ownerPid ? { ownerPid: opts.ownerPid } : {}),
      cpDir: join(dir, "controlplane"),
      underlayNs: this.topo.underlayNs,
      mountDir: join(dir, "mnt"),
      kubeconfig: join(dir, "controlplane", "kubeconfig"),
      pids: [],
      nodes: [],
    };
    // at once: a concurrent reaper must see the owner before anything else exists
    this.save();
  }

  /** Writes the state file (pids included), so that teardown finds what runs now. */
  save(): void {
    writeFileSync(stateFile(this.state.dir), JSON.stringify(this.state, null, 2));
  }

  get kubeconfig(): string {
    return this.state.kubeconfig;
  }

  kubectl(args: string[], input?: string): Promise<string> {
    return kubectl(this.kubeconfig, args, input);
  }

  /**
   * Brings up the control plane and `nodes` nodes. Images are made (or found cached) first; on
   * failure everything started is torn down again.
   */
  static async start(opts: RealClusterOptions & { nodes: number }): Promise<RealCluster> {
    requireRoot("a real-node cluster");
    const t0 = Date.now();
    const images = buildImages();
    const cluster = new RealCluster(opts, images);
    try {
      await images;
      cluster.timings.imagesSeconds = (Date.now() - t0) / 1000;
      cluster.save();
      await cluster.startControlPlane();
      await cluster.addNodes(Array.from({ length: opts.nodes }, (_, i) => `${opts.id}-node-${i + 1}`));
      if (opts.referenceCni) await cluster.waitNodesReady();
      cluster.timings.totalSeconds = (Date.now() - t0) / 1000;
      return cluster;
    } catch (err) {
      const tails = cluster.logTails();
      await destroyRealCluster(cluster.state).catch(() => undefined);
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${tails}`);
    }
  }

  private track(what: string, pid: number): number {
    this.state.pids.push({ what, pid });
    this.save();
    return pid;
  }

  private async startControlPlane(): Promise<void> {
    const t0 = Date.now();
    const { dir, cpDir } = this.state;
    await this.topo.createUnderlay();
    await ip(["-n", this.topo.underlayNs, "addr", "add", `${HUB_IP}/24`, "dev", "br0"]);
    this.save();

    // the apiserver's way to kubelets, from its first start (a restart costs controllers ~40 s);
    // pods and Services through the second proxy, started in the first node (startPodProxy)
    const egressSock = join(dir, "egress.sock");
    const podsSock = join(dir, "egress-pods.sock");
    this.track(
      "egress-proxy",
      startDetached(
        "nsenter",
        [
          `--net=/run/netns/${this.topo.underlayNs}`,
          "--",
          process.execPath,
          dist("devenv/realnodes/connect-proxy.js"),
          egressSock,
          UNDERLAY_CIDR,
          `${POD_CIDR}=${podsSock}`,
          `${SERVICE_CIDR}=${podsSock}`,
        ],
        join(dir, "egress-proxy.log"),
      ).pid,
    );
    const egressConfig = join(dir, "egress-selector.yaml");
    writeFileSync(egressConfig, egressSelectorConfig(egressSock));
    mkdirSync(cpDir, { recursive: true });
    const cp = await startControlPlane({
      dir: cpDir,
      applyCrds: false,
      ...(this.opts.ownerPid ? { ownerPid: this.opts.ownerPid } : {}),
      serverSANs: [`IP:${HUB_IP}`],
      apiserverArgs: [
        `--advertise-address=${HUB_IP}`,
        `--egress-selector-config-file=${egressConfig}`,
        "--kubelet-preferred-address-types=InternalIP",
        `--kubelet-client-certificate=${join(cpDir, "admin.crt")}`,
        `--kubelet-client-key=${join(cpDir, "admin.key")}`,
        "--allow-privileged=true",
        "--enable-admission-plugins=ValidatingAdmissionPolicy,ServiceAccount",
        "--disable-admission-plugins=-",
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
      ],
    });
    this.cp = cp;
    const port = Number(new URL(cp.server).port);

    // The apiserver listens on the host's loopback only; the hub reaches it through a unix socket.
    const apiSock = join(dir, "apiserver.sock");
    const forward = dist("devenv/forward.js");
    this.track(
      "fwd-host",
      startDetached(
        process.execPath,
        [forward, `unix:${apiSock}`, `tcp:127.0.0.1:${port}`],
        join(dir, "fwd-host.log"),
      ).pid,
    );
    this.track(
      "fwd-hub",
      startDetached(
        "nsenter",
        [
          `--net=/run/netns/${this.topo.underlayNs}`,
          "--",
          process.execPath,
          forward,
          `tcp:0.0.0.0:${port}`,
          `unix:${apiSock}`,
        ],
        join(dir, "fwd-hub.log"),
      ).pid,
    );
    await kubectl(cp.kubeconfig, ["apply", "-f", "-"], bootstrapManifests(HUB_IP));

    const admin = cp.kubeconfig;
    this.track(
      "kube-controller-manager",
      startDetached(
        tool("kube-controller-manager"),
        [
          `--kubeconfig=${admin}`,
          "--secure-port=0",
          "--leader-elect=false",
          "--use-service-account-credentials=false",
          `--service-account-private-key-file=${join(cpDir, "sa.key")}`,
          `--root-ca-file=${join(cpDir, "ca.crt")}`,
          "--controllers=*,-node-ipam-controller,-cloud-node-lifecycle-controller,-service-lb-controller,-node-route-controller",
          "--allocate-node-cidrs=false",
          "--v=1",
        ],
        join(dir, "kube-controller-manager.log"),
      ).pid,
    );
    this.track(
      "kube-scheduler",
      startDetached(
        tool("kube-scheduler"),
        [`--kubeconfig=${admin}`, "--secure-port=0", "--leader-elect=false", "--v=1"],
        join(dir, "kube-scheduler.log"),
      ).pid,
    );
    // CoreDNS on the hub; it reads Services from the apiserver through the hub's forwarder
    const dnsKubeconfig = join(dir, "coredns.kubeconfig");
    writeFileSync(
      dnsKubeconfig,
      certKubeconfig(
        `https://127.0.0.1:${port}`,
        join(cpDir, "ca.crt"),
        join(cpDir, "admin.crt"),
        join(cpDir, "admin.key"),
        "coredns",
      ),
    );
    const corefilePath = join(dir, "Corefile");
    writeFileSync(corefilePath, corefile(HUB_IP, dnsKubeconfig));
    this.track(
      "coredns",
      startDetached(
        "nsenter",
        [`--net=/run/netns/${this.topo.underlayNs}`, "--", tool("coredns"), "-conf", corefilePath],
        join(dir, "coredns.log"),
      ).pid,
    );
    await waitFor(
      "the default ServiceAccount (kube-controller-manager running)",
      async () => {
        for (const p of this.state.pids)
          if (!alive(p.pid)) throw new Error(`${p.what} exited; see ${join(dir, `${p.what}.log`)}`);
        const out = await kubectl(admin, ["get", "serviceaccount", "default", "-o", "name"]).catch(() => "");
        return out.trim() ? true : undefined;
      },
      60_000,
      250,
    );
    this.timings.controlPlaneSeconds = (Date.now() - t0) / 1000;
  }

  /** Nodes joining: their namespaces one after the other (they number the underlay ports), then booted together. */
  async addNodes(names: string[]): Promise<RealNodeState[]> {
    const topoNodes = [];
    for (const name of names) topoNodes.push(await this.topo.addNode(name));
    this.template ??= this.images.then(async (set) =>
      templateRoot([...set.all, ...((await this.opts.extraImages) ?? [])]),
    );
    await NodeMountNamespace.prepareDir(this.state.mountDir);
    const booted = await Promise.all(topoNodes.map((n) => this.bootNode(n.name, n.ns, n.underlayIP)));
    this.startPodProxy();
    return booted;
  }

  /**
   * The apiserver's way to pods and Services (its proxy subresources, e.g. `kubectl get --raw
   * /api/v1/namespaces/N/pods/P:80/proxy/`): a CONNECT proxy in the first node's network
   * namespace, where Weft's routes reach every pod and kube-proxy's rules every Service, as for
   * an apiserver on a control-plane node. The underlay's proxy hands those ranges to it.
   */
  private startPodProxy(): void {
    const node = this.state.nodes[0];
    if (!node || this.state.pids.some((p) => p.what === "egress-pods-proxy")) return;
    this.track(
      "egress-pods-proxy",
      startDetached(
        "nsenter",
        [
          `--net=/run/netns/${node.ns}`,
          "--",
          process.execPath,
          dist("devenv/realnodes/connect-proxy.js"),
          join(this.state.dir, "egress-pods.sock"),
          `${POD_CIDR},${SERVICE_CIDR}`,
        ],
        join(this.state.dir, "egress-pods-proxy.log"),
      ).pid,
    );
  }

  /** A node: mount namespace, cgroups, certificates, containerd with the images, kubelet, kube-proxy. */
  private async bootNode(name: string, ns: string, underlayIP: string): Promise<RealNodeState> {
    const cp = this.cp;
    if (!cp) throw new Error("control plane not started");
    const template = await this.template!;
    const nodeDir = join(this.state.dir, "nodes", name);
    mkdirSync(nodeDir, { recursive: true });
    const paths = nodePaths(nodeDir);
    const node: RealNodeState = {
      name,
      ns,
      ip: underlayIP,
      dir: nodeDir,
      mountFile: join(this.state.mountDir, name),
      cgroupRoot: `/${ns}`,
      pids: [],
    };
    this.state.nodes.push(node);
    this.save();

    // Service addresses are routed towards the hub so that a lookup succeeds before kube-proxy's
    // DNAT. Pod traffic to the hub (apiserver, CoreDNS) must leave with the node's address, since
    // the hub is no node and has no routes to pods: with Weft that is its outgoing NAT (natOutgoing
    // pools); with the reference plugins, which have none here, the node masquerades it itself.
    await ip(["-n", ns, "route", "add", SERVICE_CIDR, "via", HUB_IP]);
    if (this.opts.referenceCni)
      await run("ip", [
        "netns",
        "exec",
        ns,
        "iptables",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-d",
        `${HUB_IP}/32`,
        "!",
        "-s",
        UNDERLAY_CIDR,
        "-j",
        "MASQUERADE",
      ]);

    const cgroups = new NodeCgroups(node.cgroupRoot);
    cgroups.create();
    this.save();
    writeFileSync(paths.resolvConf, "nameserver 127.0.0.1\n");
    const mountns = new NodeMountNamespace(node.mountFile, paths);
    await mountns.create(this.state.mountDir);
    this.installReferencePlugins(paths.dir);
    if (this.opts.referenceCni) this.writeReferenceCni(paths.dir, Number(underlayIP.split(".")[3]) - 10);

    const ca = join(this.state.cpDir, "ca.crt");
    const server = `https://${HUB_IP}:${new URL(cp.server).port}`;
    const kubeletCert = clientCert(
      this.state.cpDir,
      `node-${name}`,
      `/O=system:nodes/CN=system:node:${name}`,
    );
    writeFileSync(
      paths.kubeletKubeconfig,
      certKubeconfig(server, ca, kubeletCert.cert, kubeletCert.key, `system:node:${name}`),
    );
    const proxyCertFile = join(this.state.cpDir, "kube-proxy.crt");
    const proxyCert = existsSync(proxyCertFile)
      ? { cert: proxyCertFile, key: join(this.state.cpDir, "kube-proxy.key") }
      : clientCert(this.state.cpDir, "kube-proxy", "/CN=system:kube-proxy");
    writeFileSync(
      paths.proxyKubeconfig,
      certKubeconfig(server, ca, proxyCert.cert, proxyCert.key, "system:kube-proxy"),
    );
    writeFileSync(paths.containerdConfig, containerdConfig(paths, PAUSE_IMAGE));
    writeFileSync(
      paths.kubeletConfig,
      kubeletConfig(paths, {
        nodeName: name,
        nodeIP: node.ip,
        cgroupRoot: node.cgroupRoot,
        clientCAFile: ca,
      }),
    );

    const start = (what: string, cmd: string, args: string[]) => {
      const pid = startInNode(cgroups, node.mountFile, ns, cmd, args, join(nodeDir, `${what}.log`));
      node.pids.push({ what, pid });
      this.save();
      return pid;
    };
    await copyRoot(template, paths.containerdRoot);
    const containerd = start("containerd", systemTool("/usr/bin/containerd", "containerd"), [
      "--config",
      paths.containerdConfig,
    ]);
    await waitFor(
      `${name}: containerd socket`,
      () => {
        if (!alive(containerd)) throw new Error(`containerd exited; see ${join(nodeDir, "containerd.log")}`);
        return existsSync(paths.containerdSocket) ? true : undefined;
      },
      30_000,
      50,
    );
    this.kubeletStarted.set(name, Date.now());
    start("kubelet", tool("kubelet"), [
      `--config=${paths.kubeletConfig}`,
      `--kubeconfig=${paths.kubeletKubeconfig}`,
      `--hostname-override=${name}`,
      `--node-ip=${node.ip}`,
      `--cert-dir=${paths.kubeletCertDir}`,
      "--v=1",
    ]);
    start("kube-proxy", tool("kube-proxy"), kubeProxyArgs(paths, name, node.ip));
    await waitFor(
      `${name}: Node object registered by its kubelet`,
      async () => {
        for (const p of node.pids)
          if (!alive(p.pid)) throw new Error(`${p.what} exited; see ${join(nodeDir, `${p.what}.log`)}`);
        const out = await this.kubectl(["get", "node", name, "-o", "name"]).catch(() => "");
        return out.trim() ? true : undefined;
      },
      60_000,
      200,
    );
    return node;
  }

  /**
   * The reference plugins a node's OS provides in /opt/cni/bin, as kubeadm's kubernetes-cni
   * package does: containerd runs `loopback` for every pod, Weft's conflist chains `portmap`.
   */
  private installReferencePlugins(nodeDir: string): void {
    const bin = join(nodeDir, "host", "opt/cni/bin");
    for (const p of ["bridge", "host-local", "loopback", "portmap"])
      copyFileSync(systemTool(`/usr/lib/cni/${p}`, "containernetworking-plugins"), join(bin, p));
  }

  /**
   * Puts Debian's `bridge` + `host-local` chain in front of whatever network the node has (its
   * conflist sorts first, and containerd uses the first), or takes it away again: new sandboxes
   * on the node get the reference network while it is there. Pods started under one network must
   * be gone before the switch, since containerd tears a sandbox down with the current one.
   */
  useReferenceCni(nodeName: string, on: boolean): void {
    const node = this.state.nodes.find((n) => n.name === nodeName);
    if (!node) throw new Error(`no node ${nodeName}`);
    const file = join(node.dir, "host", "etc/cni/net.d", REFERENCE_FIRST);
    if (!on) {
      rmSync(file, { force: true });
      return;
    }
    const tmp = join(node.dir, `${REFERENCE_FIRST}.tmp`);
    writeFileSync(tmp, referenceConflist(Number(node.ip.split(".")[3]) - 10));
    renameSync(tmp, file);
  }

  /**
   * Debian's reference plugins as the node's network: a bridge with host-local addresses from a
   * /24 of its own (10.88.N.0/24); pods on different nodes cannot reach each other with it.
   */
  private writeReferenceCni(nodeDir: string, index: number): void {
    writeFileSync(join(nodeDir, "host", "etc/cni/net.d", "90-reference.conflist"), referenceConflist(index));
  }

  /** Waits until every node reports Ready; records each node's time from kubelet start. */
  async waitNodesReady(timeoutMs = 120_000): Promise<void> {
    await waitFor(
      "every node Ready",
      async () => {
        const nodes = JSON.parse(await this.kubectl(["get", "nodes", "-o", "json"])) as {
          items: Array<{
            metadata: { name: string };
            status?: { conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }> };
          }>;
        };
        let ready = 0;
        for (const n of nodes.items) {
          const c = n.status?.conditions?.find((x) => x.type === "Ready");
          if (c?.status !== "True") continue;
          ready++;
          const started = this.kubeletStarted.get(n.metadata.name);
          if (started && this.timings.nodeReadySeconds[n.metadata.name] === undefined)
            this.timings.nodeReadySeconds[n.metadata.name] =
              (new Date(c.lastTransitionTime ?? Date.now()).getTime() - started) / 1000;
        }
        return ready === this.state.nodes.length ? true : undefined;
      },
      timeoutMs,
      250,
    );
  }

  /** Memory of each node's daemons (RSS of containerd, kubelet, kube-proxy), in MiB. */
  nodeMemory(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const n of this.state.nodes) {
      const row: Record<string, number> = {};
      for (const p of n.pids) {
        const status = existsSync(`/proc/${p.pid}/status`)
          ? readFileSync(`/proc/${p.pid}/status`, "utf8")
          : "";
        const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
        row[p.what] = Math.round(kb / 1024);
      }
      out[n.name] = row;
    }
    return out;
  }

  /** The last lines of every log, so a failure says what the components saw. */
  logTails(lines = 12): string {
    const out: string[] = [];
    const add = (file: string) => {
      if (!existsSync(file)) return;
      const text = readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines);
      out.push(`--- ${file}`, ...text);
    };
    for (const p of this.state.pids) add(join(this.state.dir, `${p.what}.log`));
    add(join(this.state.cpDir, "apiserver.log"));
    for (const n of this.state.nodes) for (const p of n.pids) add(join(n.dir, `${p.what}.log`));
    return out.join("\n");
  }

  async destroy(): Promise<void> {
    await destroyRealCluster(this.state);
  }
}

/**
 * Tears a cluster down from its state, in reverse order: per node kube-proxy, kubelet and
 * containerd by pid, then whatever still runs in the node's cgroups (shims, containers), the
 * cgroups, the mount namespace; then CoreDNS, the controllers, forwarders and the egress proxy,
 * the control plane, and the network namespaces. Safe to call twice and on a half-made cluster.
 */
export async function destroyRealCluster(state: RealClusterState, removeDir = true): Promise<void> {
  const errors: string[] = [];
  const attempt = async (what: string, fn: () => Promise<void> | void) => {
    const t0 = Date.now();
    try {
      await fn();
      if (process.env.WEFT_DEBUG_TEARDOWN) console.error(`teardown ${what}: ${Date.now() - t0} ms`);
    } catch (err) {
      errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  for (const node of [...state.nodes].reverse()) {
    for (const p of [...node.pids].reverse())
      await attempt(`${node.name} ${p.what}`, () =>
        ownedBy(p.pid, state.dir) ? stopPid(p.pid, 10_000) : undefined,
      );
    await attempt(`${node.name} cgroups`, () => new NodeCgroups(node.cgroupRoot).destroy());
    await attempt(`${node.name} mount namespace`, () =>
      new NodeMountNamespace(node.mountFile, nodePaths(node.dir)).destroy(),
    );
  }
  for (const p of [...state.pids].reverse())
    await attempt(p.what, () => (ownedBy(p.pid, state.dir) ? stopPid(p.pid, 10_000) : undefined));
  const cp = readState(state.cpDir);
  if (cp) await attempt("control plane", () => stopControlPlane(cp, false));
  await attempt("mount dir", async () => {
    // unmount until it is no mount point (a crashed run may have stacked more than one)
    for (let i = 0; i < 5 && existsSync(state.mountDir); i++)
      if (
        !(await run("umount", [state.mountDir]).then(
          () => true,
          () => false,
        ))
      )
        break;
  });
  await attempt("namespaces", () => removeNamespaces(state.id));
  // rm(1) is several times faster than rmSync on the nodes' many hard-linked image files
  if (removeDir) await attempt("directory", () => run("rm", ["-rf", state.dir]).then(() => undefined));
  if (errors.length) throw new Error(`teardown of ${state.id} left errors:\n${errors.join("\n")}`);
}

/** Whether pid still runs something of this cluster (its command line names the cluster's directory or it is a node daemon). */
function ownedBy(pid: number, dir: string): boolean {
  if (!alive(pid)) return false;
  const cmd = cmdline(pid);
  return (
    cmd.includes(dir) || /kubelet|containerd|kube-proxy|coredns|kube-controller|kube-scheduler/.test(cmd)
  );
}

/** Clusters of earlier runs whose owner died (a killed test run) are torn down. */
export async function reapRealClusters(): Promise<number> {
  let reaped = 0;
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(TMP_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const state = readClusterState(dir);
    if (state?.ownerPid && alive(state.ownerPid)) continue;
    if (state) await destroyRealCluster(state).catch((err: unknown) => console.error(String(err)));
    rmSync(dir, { recursive: true, force: true });
    reaped++;
  }
  return reaped;
}
