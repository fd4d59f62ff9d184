import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { type PreviousRelease, previousRelease } from "../../devenv/images/previous.js";
import { sleep, waitFor } from "../../devenv/procs.js";
import { RealCluster, reapRealClusters } from "../../devenv/realnodes/cluster.js";
import {
  killPodContainers,
  removeNode,
  type StoppedProcess,
  startApiserver,
  startNodeDaemons,
  stopApiserver,
  stopNodeDaemons,
  waitContainersRestarted,
} from "../../devenv/realnodes/faults.js";
import { NodeCgroups } from "../../devenv/realnodes/host.js";
import { failures, formatReport, type PathReport, summarize } from "../../devenv/realnodes/probe.js";
import { installRelease, RELEASE, upgradeRelease } from "../../devenv/realnodes/release.js";
import { type RouteLoss, RouteWatch, routesHeld } from "../../devenv/realnodes/routewatch.js";
import { deployProbePods, TrafficMesh } from "../../devenv/realnodes/traffic.js";
import type { RealNodeMode } from "../../devenv/realnodes/workload.js";
import { repoRoot } from "../../devenv/tools.js";
import { leftovers } from "./leftovers.js";

const execFileP = promisify(execFile);

/**
 * The fault suite's rig: a real-node cluster with Weft installed by Helm, and the scenarios of
 * the suite as methods. Every scenario runs under continuous traffic between pods on every pair
 * of nodes (traffic.ts) with every kernel watched for lost routes (routewatch.ts), and ends
 * with the cluster converged: every NodeNetworkStatus Ready and `weftctl ipam check` clean.
 * Durations are parameters: the short suite (make test) and the long one (make chaos) run the
 * same scenarios with different ones.
 */

export interface RigOptions {
  id: string;
  mode: RealNodeMode;
  nodes: number;
  /** Install the previous release (its chart and image) instead of the current one. */
  fromPrevious?: boolean;
  /** Chart values beyond image and mode (e.g. a short GC grace). */
  values?: Record<string, string>;
  /** BGP: make the first node a route reflector, the others its clients (no full mesh). */
  reflector?: boolean;
}

export interface ScenarioResult {
  scenario: string;
  mode: RealNodeMode;
  rows: PathReport[];
  routeLosses: RouteLoss[];
  /** What went wrong: the test fails on any. */
  failures: string[];
  /** Facts worth printing (who led, what restarted, addresses kept). */
  notes: string[];
}

/** What a fault tells the scenario while it runs. */
interface FaultContext {
  notes: string[];
  /** A node the fault restarts or stops: loss on its paths is reported, not failed. */
  disturb(node: string): void;
}

interface ScenarioOptions {
  /** Route deletions the fault is allowed (e.g. a stopped node's routes, once it is gone). */
  allowRouteLoss?: (loss: RouteLoss) => boolean;
  /** Traffic keeps running this long after the fault, to see the recovery. */
  settleMs?: number;
}

interface Pod {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: { podIP?: string; phase?: string; conditions?: Array<{ type: string; status: string }> };
}

const CURRENT_CHART = join(repoRoot, "charts", "weft");
const log = (msg: string) => console.log(`# ${new Date().toISOString().slice(11, 19)} ${msg}`);

export class FaultRig {
  readonly results: ScenarioResult[] = [];
  /** Nodes that exist (a removed node leaves this list). */
  readonly live: string[];
  private constructor(
    readonly cluster: RealCluster,
    readonly opts: RigOptions,
    readonly previous: PreviousRelease | undefined,
  ) {
    this.live = cluster.state.nodes.map((n) => n.name);
  }

  /**
   * Reaps clusters of killed runs, builds the previous release when asked (its image joins the
   * nodes' image store), starts the cluster and installs Weft.
   */
  static async start(opts: RigOptions): Promise<FaultRig> {
    const reaped = await reapRealClusters();
    if (reaped) log(`reaped ${reaped} real-node cluster(s) left by an earlier run`);
    const previous = opts.fromPrevious ? previousRelease() : undefined;
    // an unhandled rejection must not end the run before start() reports it
    previous?.catch(() => undefined);
    const cluster = await RealCluster.start({
      id: opts.id,
      nodes: opts.nodes,
      ownerPid: process.pid,
      ...(previous ? { extraImages: previous.then((p) => [p.image]) } : {}),
    });
    const rig = new FaultRig(cluster, opts, await previous);
    try {
      if (opts.reflector) await rig.markReflector(rig.live[0] as string);
      const images = await cluster.images;
      await installRelease(cluster, {
        chart: rig.previous ? join(rig.previous.dir, "charts", "weft") : CURRENT_CHART,
        image: rig.previous ? rig.previous.image : images.weft,
        mode: opts.mode,
        values: rig.chartValues(),
      });
      await cluster.waitNodesReady(300_000);
      await rig.converge("after install");
      log(
        `cluster ${opts.id} up (mode ${opts.mode}, ${opts.nodes} nodes${rig.previous ? `, Weft ${rig.previous.commit.slice(0, 10)} (${rig.previous.ref})` : ""})`,
      );
      return rig;
    } catch (err) {
      await rig.destroy().catch(() => undefined);
      throw err;
    }
  }

  private chartValues(): Record<string, string> {
    return {
      ...(this.opts.reflector ? { "bgp.routeReflectors.nodeSelector.weft\\.dev/reflector": "true" } : {}),
      ...this.opts.values,
    };
  }

  /** A node as a route reflector: the label the chart's BGPPeer selects, and its cluster id. */
  private async markReflector(node: string): Promise<void> {
    await this.cluster.kubectl(["label", "node", node, "weft.dev/reflector=true", "--overwrite"]);
    await this.cluster.kubectl([
      ...["annotate", "node", node, "weft.dev/route-reflector-cluster-id=244.0.0.1", "--overwrite"],
    ]);
  }

  kubectl(args: string[], input?: string): Promise<string> {
    return this.cluster.kubectl(args, input);
  }

  private async pods(namespace: string, selector?: string): Promise<Pod[]> {
    const args = ["-n", namespace, "get", "pods", "-o", "json", ...(selector ? ["-l", selector] : [])];
    return (JSON.parse(await this.kubectl(args)) as { items: Pod[] }).items;
  }

  /** Weft's pods in its namespace: the agent per node and the controller replicas. */
  async weftPods(): Promise<{ agents: Pod[]; controllers: Pod[] }> {
    const all = (await this.pods(RELEASE.namespace)).filter((p) => !p.metadata.deletionTimestamp);
    return {
      agents: all.filter((p) => p.metadata.name.startsWith("weft-agent-")),
      controllers: all.filter((p) => p.metadata.name.startsWith("weft-controller-")),
    };
  }

  /** The controller replica holding the lease. */
  async leader(): Promise<Pod> {
    const holder = (
      await this.kubectl([
        ...["-n", RELEASE.namespace, "get", "lease", "weft-controller"],
        ...["-o", "jsonpath={.spec.holderIdentity}"],
      ])
    ).trim();
    const pod = (await this.weftPods()).controllers.find((p) => p.metadata.name === holder);
    if (!pod) throw new Error(`the lease holder ${holder || "(none)"} is no running controller pod`);
    return pod;
  }

  /** Block CIDRs per node (their affinity), from the IPAMBlocks. */
  async blocksByNode(): Promise<Map<string, string[]>> {
    const blocks = JSON.parse(await this.kubectl(["get", "ipamblocks", "-o", "json"])) as {
      items: Array<{ spec: { cidr: string; affinity?: string } }>;
    };
    const out = new Map<string, string[]>();
    for (const b of blocks.items) {
      const owner = b.spec.affinity ?? "";
      out.set(owner, [...(out.get(owner) ?? []), b.spec.cidr]);
    }
    return out;
  }

  /** `weftctl ipam check` from this checkout: exit 0 and its report, or the report of what is wrong. */
  async ipamCheck(): Promise<{ clean: boolean; report: string }> {
    const args = [join(repoRoot, "dist", "cli", "main.js"), "--kubeconfig", this.cluster.kubeconfig];
    try {
      const { stdout } = await execFileP(process.execPath, [...args, "ipam", "check"]);
      return { clean: true, report: stdout.trim() };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      return { clean: false, report: (e.stdout || e.stderr || e.message).trim() };
    }
  }

  /** Why the cluster is not converged yet, or undefined once it is. */
  async notConverged(): Promise<string | undefined> {
    const statuses = JSON.parse(await this.kubectl(["get", "nodenetworkstatuses", "-o", "json"])) as {
      items: Array<{
        metadata: { name: string };
        status?: { conditions?: Array<{ type: string; status: string; message?: string }> };
      }>;
    };
    for (const node of this.live) {
      const s = statuses.items.find((i) => i.metadata.name === node);
      const ready = s?.status?.conditions?.find((c) => c.type === "Ready");
      if (ready?.status !== "True")
        return `NodeNetworkStatus ${node} not Ready (${ready?.message ?? "no status"})`;
    }
    const { agents, controllers } = await this.weftPods();
    const isReady = (p: Pod) => p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    for (const p of [...agents, ...controllers])
      if (this.live.includes(p.spec.nodeName ?? "") && !isReady(p)) return `pod ${p.metadata.name} not Ready`;
    const check = await this.ipamCheck();
    if (!check.clean) return `weftctl ipam check:\n${check.report}`;
    return undefined;
  }

  /** Waits until every NodeNetworkStatus is Ready, Weft's pods are Ready and `weftctl ipam check` is clean. */
  async converge(when: string, timeoutMs = 300_000): Promise<void> {
    let why: string | undefined = "not checked";
    try {
      await waitFor(
        `the cluster to converge ${when}`,
        async () => {
          why = await this.notConverged();
          return why === undefined ? true : undefined;
        },
        timeoutMs,
        2000,
      );
    } catch {
      throw new Error(`not converged ${when} within ${timeoutMs / 1000} s: ${why}`);
    }
  }

  /**
   * Runs a fault under traffic: probe pods on every live node, the mesh and the route watch
   * started, the fault, traffic kept running `settleMs`, then the report, and convergence.
   */
  async scenario(
    name: string,
    opts: ScenarioOptions,
    fault: (ctx: FaultContext) => Promise<void>,
  ): Promise<ScenarioResult> {
    const pods = await deployProbePods(this.cluster, this.live);
    const blocks = await this.blocksByNode();
    const nodes = this.cluster.state.nodes.filter((n) => this.live.includes(n.name));
    const watch = new RouteWatch(nodes, blocks);
    const notes: string[] = [];
    const disturbed: string[] = [];
    let mesh: TrafficMesh | undefined;
    let rows: PathReport[] = [];
    const problems: string[] = [];
    try {
      mesh = await TrafficMesh.start(this.cluster, pods);
      log(`${name}: traffic flowing on ${pods.length * (pods.length - 1)} paths`);
      await fault({ notes, disturb: (node) => disturbed.push(node) });
      await sleep(opts.settleMs ?? 10_000);
    } catch (err) {
      problems.push(`the fault itself failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      rows = mesh ? await mesh.stop(disturbed) : [];
      watch.stop();
    }
    const losses = watch.losses.filter((l) => !opts.allowRouteLoss?.(l));
    problems.push(...failures(rows));
    for (const l of losses) problems.push(`${l.node} lost its route to ${l.block}: ${l.line}`);
    const result: ScenarioResult = {
      scenario: name,
      mode: this.opts.mode,
      rows,
      routeLosses: watch.losses,
      failures: problems,
      notes,
    };
    this.results.push(result);
    const sum = summarize(rows);
    console.log(formatReport(`${name} (mode ${this.opts.mode})`, rows).replace(/^/gm, "# "));
    for (const n of notes) log(`${name}: ${n}`);
    log(
      `${name}: ${sum.lost}/${sum.sent} echoes lost (${sum.lostUndisturbed} between undisturbed nodes), longest gap ${(sum.longestGapMs / 1000).toFixed(1)} s, ${sum.tcpBreaks} TCP break(s), ${watch.losses.length} route deletion(s)`,
    );
    if (problems.length === 0) {
      try {
        await this.converge(`after ${name}`);
      } catch (err) {
        problems.push(err instanceof Error ? err.message : String(err));
      }
    }
    return result;
  }

  // --- the scenarios -----------------------------------------------------------------------

  /**
   * The apiserver and etcd down for `seconds`; inside the outage one agent's containers and the
   * controller leader's are killed (the kubelet restarts them, apiserver or not).
   */
  outage(seconds: number): Promise<ScenarioResult> {
    return this.scenario(`apiserver and etcd down ${seconds} s`, {}, async ({ notes }) => {
      const { agents } = await this.weftPods();
      const agentNode = this.live[1] ?? (this.live[0] as string);
      const agent = agents.find((p) => p.spec.nodeName === agentNode);
      if (!agent) throw new Error(`no agent pod on ${agentNode}`);
      const leader = await this.leader();
      const stopped = await stopApiserver(this.cluster);
      const down = Date.now();
      try {
        await sleep((seconds * 1000) / 4);
        const killedAgent = await killPodContainers(this.cluster, agentNode, agent.metadata.uid);
        const leaderNode = leader.spec.nodeName as string;
        const killedLeader = await killPodContainers(this.cluster, leaderNode, leader.metadata.uid).catch(
          // it may be restarting already: a leader that cannot renew its lease exits by itself
          () => [],
        );
        notes.push(
          `killed agent ${agent.metadata.name} (${agentNode}) and controller leader ${leader.metadata.name} (${leaderNode}) ${((Date.now() - down) / 1000).toFixed(0)} s into the outage`,
        );
        await waitContainersRestarted(this.cluster, agentNode, agent.metadata.uid, killedAgent);
        if (killedLeader.length)
          await waitContainersRestarted(this.cluster, leaderNode, leader.metadata.uid, killedLeader, 300_000);
        notes.push(
          `both restarted by their kubelets ${((Date.now() - down) / 1000).toFixed(0)} s into the outage`,
        );
        await sleep(Math.max(0, down + seconds * 1000 - Date.now()));
      } finally {
        await startApiserver(this.cluster, stopped);
      }
      notes.push(`apiserver back after ${((Date.now() - down) / 1000).toFixed(0)} s`);
      await this.converge("after the outage");
      notes.push(`converged ${((Date.now() - down) / 1000).toFixed(0)} s after the outage began`);
    });
  }

  /** `helm upgrade` from what runs to the current chart and image (every agent replaced in turn). */
  upgrade(values: Record<string, string> = {}, title?: string): Promise<ScenarioResult> {
    const name = title ?? (this.previous ? `helm upgrade from ${this.previous.ref}` : "helm upgrade");
    return this.scenario(name, {}, async ({ notes }) => {
      const before = new Set((await this.weftPods()).agents.map((p) => p.metadata.name));
      const images = await this.cluster.images;
      await upgradeRelease(this.cluster, {
        chart: CURRENT_CHART,
        image: images.weft,
        mode: this.opts.mode,
        values: { ...this.chartValues(), ...values },
      });
      const after = (await this.weftPods()).agents.map((p) => p.metadata.name);
      const replaced = after.filter((n) => !before.has(n)).length;
      notes.push(`${replaced} of ${after.length} agents replaced by the rolling update`);
      if (replaced !== after.length)
        throw new Error(`only ${replaced} of ${after.length} agents were replaced`);
    });
  }

  /** The same chart and image with a changed value that re-renders every agent (log level). */
  valueChange(): Promise<ScenarioResult> {
    return this.upgrade({ logLevel: "debug" }, "helm upgrade with logLevel=debug (every agent re-rendered)");
  }

  /** A node's containerd, kubelet, kube-proxy and agent stopped for `seconds`, then started again. */
  nodeRestart(node: string, seconds: number): Promise<ScenarioResult> {
    return this.scenario(`node restart (${node}, down ${seconds} s)`, {}, async ({ notes, disturb }) => {
      disturb(node);
      const { agents } = await this.weftPods();
      const agent = agents.find((p) => p.spec.nodeName === node);
      if (!agent) throw new Error(`no agent pod on ${node}`);
      const before = await this.podAddresses(node);
      const stopped = await this.stopNode(node, agent.metadata.uid);
      await sleep(seconds * 1000);
      await startNodeDaemons(this.cluster, node, stopped);
      await this.converge(`after ${node} restarted`);
      const after = await this.podAddresses(node);
      const moved = [...before].filter(([pod, ip]) => after.get(pod) !== ip);
      notes.push(`${before.size - moved.length} of ${before.size} pods on ${node} kept their addresses`);
      if (moved.length)
        throw new Error(
          `pods on ${node} changed address: ${moved.map(([p, ip]) => `${p} ${ip} -> ${after.get(p) ?? "gone"}`).join(", ")}`,
        );
    });
  }

  /** Daemons stopped, then the agent's containers killed (its pod's sandbox stays, as its routes do). */
  private async stopNode(node: string, agentUID: string): Promise<StoppedProcess[]> {
    const stopped = await stopNodeDaemons(this.cluster, node);
    await killPodContainers(this.cluster, node, agentUID);
    return stopped;
  }

  /** Addresses of the pods on a node that live in the pod network, by pod name. */
  private async podAddresses(node: string): Promise<Map<string, string>> {
    const all = await this.pods("default");
    return new Map(
      all
        .filter((p) => p.spec.nodeName === node && p.status.podIP)
        .map((p) => [p.metadata.name, p.status.podIP as string]),
    );
  }

  /**
   * The controller leader's pod deleted (`pod`) or its whole node stopped and started again
   * (`node`) while a Deployment scales up and down; afterwards no address is duplicated and,
   * once GC ran, none leaked.
   */
  failover(how: "pod" | "node", downSeconds = 30): Promise<ScenarioResult> {
    const title =
      how === "pod"
        ? "controller failover (leader pod deleted)"
        : "controller failover (leader's node stopped)";
    return this.scenario(title, {}, async ({ notes, disturb }) => {
      const leader = await this.leader();
      const leaderNode = leader.spec.nodeName as string;
      const churn = new Churn(this);
      await churn.start();
      try {
        await sleep(5_000);
        if (how === "pod") {
          await this.kubectl([
            "-n",
            RELEASE.namespace,
            "delete",
            "pod",
            leader.metadata.name,
            "--wait=false",
          ]);
        } else {
          disturb(leaderNode);
          await this.powerOff(leaderNode);
        }
        const next = await waitFor(
          "another controller replica to take the lease",
          async () => {
            const l = await this.leader().catch(() => undefined);
            return l && l.metadata.name !== leader.metadata.name ? l : undefined;
          },
          180_000,
          500,
        );
        notes.push(
          `leader ${leader.metadata.name} (${leaderNode}) -> ${next.metadata.name} (${next.spec.nodeName})`,
        );
        await sleep(how === "node" ? downSeconds * 1000 : 10_000);
        if (how === "node") await this.powerOn(leaderNode);
      } finally {
        notes.push(`churn: ${await churn.stop()}`);
      }
      const dup = await this.duplicateAddresses();
      if (dup.length) throw new Error(`duplicate pod addresses: ${dup.join("; ")}`);
      // convergence includes `weftctl ipam check` clean: every leaked address released by GC
      await this.converge("after failover and GC", 600_000);
    });
  }

  private readonly offline = new Map<string, StoppedProcess[]>();

  /** Every process of a node ends at once (daemons, shims, pods), as when its machine loses power. */
  private async powerOff(node: string): Promise<void> {
    const state = this.cluster.state.nodes.find((n) => n.name === node);
    if (!state) throw new Error(`no node ${node}`);
    this.offline.set(node, await stopNodeDaemons(this.cluster, node));
    const cg = new NodeCgroups(state.cgroupRoot);
    await cg.destroy();
    cg.create();
  }

  private async powerOn(node: string): Promise<void> {
    const stopped = this.offline.get(node);
    if (!stopped) throw new Error(`${node} was not powered off`);
    await startNodeDaemons(this.cluster, node, stopped);
    this.offline.delete(node);
  }

  /** Running pods sharing an address (host-network pods aside). */
  async duplicateAddresses(): Promise<string[]> {
    const all = (JSON.parse(await this.kubectl(["get", "pods", "-A", "-o", "json"])) as { items: Pod[] })
      .items;
    const nodeIPs = new Set(this.cluster.state.nodes.map((n) => n.ip));
    const seen = new Map<string, string>();
    const dup: string[] = [];
    for (const p of all) {
      const ip = p.status.podIP;
      if (!ip || nodeIPs.has(ip) || p.status.phase !== "Running") continue;
      const other = seen.get(ip);
      if (other) dup.push(`${ip}: ${other} and ${p.metadata.name}`);
      else seen.set(ip, p.metadata.name);
    }
    return dup;
  }

  /**
   * A node removed for good (processes, namespaces, Node object): its routes leave every other
   * kernel and its blocks are released once its pods are gone.
   */
  async nodeDelete(node: string): Promise<ScenarioResult> {
    const blocks = (await this.blocksByNode()).get(node) ?? [];
    // the probe pod on the node goes with it; the others keep measuring
    this.live.splice(this.live.indexOf(node), 1);
    await this.kubectl(["-n", "default", "delete", "pod", `fault-probe-${node}`, "--wait=false"]);
    return this.scenario(
      `node deleted for good (${node})`,
      { allowRouteLoss: (l) => blocks.includes(l.block) },
      async ({ notes }) => {
        await removeNode(this.cluster, node);
        const others = this.cluster.state.nodes.filter((n) => this.live.includes(n.name));
        await waitFor(
          `every other kernel to drop the routes to ${node}'s blocks ${blocks.join(", ")}`,
          async () => {
            for (const n of others) if ((await routesHeld(n.ns, blocks)).length > 0) return undefined;
            return true;
          },
          300_000,
          1000,
        );
        notes.push(`routes to ${blocks.join(", ")} left ${others.length} kernels`);
        await waitFor(
          `${node}'s blocks to be released`,
          async () => ((await this.blocksByNode()).get(node)?.length ? undefined : true),
          600_000,
          2000,
        );
        notes.push(`${node}'s ${blocks.length} block(s) released`);
      },
    );
  }

  /** The route reflector node restarted (BIRD with it); its clients keep every route by graceful restart. */
  reflectorRestart(seconds: number): Promise<ScenarioResult> {
    const node = this.live[0] as string;
    return this.nodeRestart(node, seconds).then((r) => {
      r.scenario = `BGP reflector restart (${node}, down ${seconds} s)`;
      return r;
    });
  }

  /** Tears the cluster down and lists what it left behind (nothing, or the test fails). */
  async destroy(): Promise<string[]> {
    await this.cluster.destroy();
    return leftovers(this.opts.id, this.cluster.state.dir);
  }
}

/** A Deployment scaled up and down in a loop: pods come and go on every node during a fault. */
class Churn {
  private running = false;
  private loop: Promise<void> | undefined;
  private rounds = 0;
  private errors = 0;

  constructor(private readonly rig: FaultRig) {}

  async start(): Promise<void> {
    await this.rig.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: churn, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: churn}}
  template:
    metadata: {labels: {app: churn}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: pause
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        imagePullPolicy: Never
        args: [pause]
`,
    );
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const replicas = this.rounds % 2 === 0 ? 6 : 1;
        await this.rig
          .kubectl(["-n", "default", "scale", "deployment", "churn", `--replicas=${replicas}`])
          .catch(() => this.errors++);
        this.rounds++;
        await sleep(4_000);
      }
    })();
  }

  async stop(): Promise<string> {
    this.running = false;
    await this.loop;
    await this.rig.kubectl([
      "-n",
      "default",
      "delete",
      "deployment",
      "churn",
      "--wait=true",
      "--timeout=180s",
    ]);
    return `${this.rounds} scale changes (${this.errors} refused)`;
  }
}

/** One line per scenario for the README's reliability table. */
export function reliabilityRows(results: ScenarioResult[], date = new Date()): string[] {
  const day = date.toISOString().slice(0, 10);
  return results.map((r) => {
    const s = summarize(r.rows);
    return `| ${r.scenario} | ${r.mode} | ${s.lost} of ${s.sent} (${s.lostUndisturbed} between undisturbed nodes) | ${(s.longestGapMs / 1000).toFixed(1)} s | ${day} |`;
  });
}
