import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { readState, writeState } from "../controlplane.js";
import { alive, sleep, startDetached, stopPid, waitFor } from "../procs.js";
import type { RealCluster, RealNodeState } from "./cluster.js";
import { nodePaths } from "./config.js";
import { NodeCgroups, NodeMountNamespace, startInNode } from "./host.js";
import { podContainerPids } from "./pods.js";

const execFileP = promisify(execFile);

/**
 * The faults of the fault suite, as operations on a running real-node cluster: the apiserver and
 * etcd stopped and started again with their data, a node's daemons (containerd, kubelet,
 * kube-proxy) stopped and started again with their state, a pod's containers killed (the
 * kubelet restarts them, apiserver or not), and a node removed for good. Everything restarted is
 * recorded in the cluster's state under its new pid, so teardown still finds it.
 */

/** A process stopped by a fault, with what it takes to start it again as it was. */
export interface StoppedProcess {
  what: string;
  argv: string[];
  logFile: string;
}

/** The full command line of a running process. */
function argvOf(pid: number): string[] {
  const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  const argv = raw.split("\0");
  if (argv[argv.length - 1] === "") argv.pop();
  if (argv.length === 0) throw new Error(`process ${pid} has no command line (a kernel thread or gone)`);
  return argv;
}

/**
 * Stops kube-apiserver, then etcd (their data stays on disk). Nodes, pods, agents and the
 * controller keep running without them.
 */
export async function stopApiserver(cluster: RealCluster): Promise<StoppedProcess[]> {
  const cp = readState(cluster.state.cpDir);
  if (!cp) throw new Error(`no control plane state in ${cluster.state.cpDir}`);
  const stopped: StoppedProcess[] = [];
  for (const [what, pid] of [
    ["apiserver", cp.apiserverPid],
    ["etcd", cp.etcdPid],
  ] as const) {
    if (!alive(pid)) throw new Error(`${what} (pid ${pid}) is not running`);
    stopped.push({ what, argv: argvOf(pid), logFile: join(cp.dir, `${what}.log`) });
    await stopPid(pid, 10_000);
  }
  return stopped;
}

/** Starts etcd and kube-apiserver again as they were and waits until the apiserver is ready. */
export async function startApiserver(cluster: RealCluster, stopped: StoppedProcess[]): Promise<void> {
  const cp = readState(cluster.state.cpDir);
  if (!cp) throw new Error(`no control plane state in ${cluster.state.cpDir}`);
  for (const what of ["etcd", "apiserver"]) {
    const p = stopped.find((s) => s.what === what);
    if (!p) throw new Error(`${what} was not stopped by stopApiserver`);
    const [cmd, ...args] = p.argv as [string, ...string[]];
    const pid = startDetached(cmd, args, p.logFile).pid;
    if (what === "etcd") cp.etcdPid = pid;
    else cp.apiserverPid = pid;
    writeState(cp);
  }
  await waitFor(
    "kube-apiserver /readyz after its restart",
    async () => {
      for (const pid of [cp.etcdPid, cp.apiserverPid])
        if (!alive(pid)) throw new Error(`a restarted control plane process exited; see ${cp.dir}`);
      const out = await cluster.kubectl(["get", "--raw", "/readyz"]).catch(() => "");
      return out.trim() === "ok" ? true : undefined;
    },
    120_000,
    500,
  );
}

function nodeOf(cluster: RealCluster, name: string): RealNodeState {
  const node = cluster.state.nodes.find((n) => n.name === name);
  if (!node) throw new Error(`${name} is not a node of cluster ${cluster.state.id}`);
  return node;
}

/**
 * Stops a node's kube-proxy, kubelet and containerd (in that order) by pid. The runtime's shims
 * and the pods' containers keep running, as they do when those daemons restart on a real node;
 * the agent is a container too: stop it with killPodContainers.
 */
export async function stopNodeDaemons(cluster: RealCluster, name: string): Promise<StoppedProcess[]> {
  const node = nodeOf(cluster, name);
  const stopped: StoppedProcess[] = [];
  for (const p of [...node.pids].reverse()) {
    if (!alive(p.pid)) continue;
    stopped.unshift({ what: p.what, argv: argvOf(p.pid), logFile: join(node.dir, `${p.what}.log`) });
    await stopPid(p.pid, 15_000);
  }
  node.pids = [];
  cluster.save();
  return stopped;
}

/** Starts a node's daemons again (containerd first, once its socket answers the kubelet), with their old command lines. */
export async function startNodeDaemons(
  cluster: RealCluster,
  name: string,
  stopped: StoppedProcess[],
): Promise<void> {
  const node = nodeOf(cluster, name);
  const cgroups = new NodeCgroups(node.cgroupRoot);
  const socket = nodePaths(node.dir).containerdSocket;
  for (const p of stopped) {
    const [cmd, ...args] = p.argv as [string, ...string[]];
    const pid = startInNode(cgroups, node.mountFile, node.ns, cmd, args, p.logFile);
    node.pids.push({ what: p.what, pid });
    cluster.save();
    if (p.what === "containerd") {
      await waitFor(
        `${name}: containerd answering again`,
        async () => {
          if (!alive(pid)) throw new Error(`containerd exited; see ${p.logFile}`);
          if (!existsSync(socket)) return undefined;
          const ok = await execFileP("ctr", ["-a", socket, "version"]).then(
            () => true,
            () => false,
          );
          return ok ? true : undefined;
        },
        60_000,
        200,
      );
    }
  }
}

/** The uid of a pod, read while the apiserver answers (the faults later find its processes by it). */
export async function podUID(cluster: RealCluster, namespace: string, pod: string): Promise<string> {
  return (
    await cluster.kubectl(["-n", namespace, "get", "pod", pod, "-o", "jsonpath={.metadata.uid}"])
  ).trim();
}

/**
 * Kills a pod's containers (not its sandbox) with SIGKILL, as a crash would; the kubelet starts
 * them again from what it knows, with or without the apiserver. Returns the pids it killed.
 */
export async function killPodContainers(cluster: RealCluster, node: string, uid: string): Promise<number[]> {
  const pids = podContainerPids(nodeOf(cluster, node), uid);
  if (pids.length === 0) throw new Error(`no container process of pod ${uid} on ${node}`);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone already */
    }
  }
  for (const pid of pids) while (alive(pid)) await sleep(50);
  return pids;
}

/** Waits until the kubelet has started the pod's containers again (new processes in its cgroups). */
export async function waitContainersRestarted(
  cluster: RealCluster,
  node: string,
  uid: string,
  killed: number[],
  timeoutMs = 120_000,
): Promise<void> {
  await waitFor(
    `the containers of pod ${uid} on ${node} running again`,
    () => {
      const now = podContainerPids(nodeOf(cluster, node), uid);
      return now.length > 0 && now.every((p) => !killed.includes(p)) ? true : undefined;
    },
    timeoutMs,
    250,
  );
}

/**
 * A node gone for good, as when its machine is decommissioned: every process of it ends (daemons,
 * shims, pods), its cgroups, mount namespace and network namespace go, and its Node object is
 * deleted. What Weft then has to do (routes, blocks) is the caller's to check.
 */
export async function removeNode(cluster: RealCluster, name: string): Promise<void> {
  const node = nodeOf(cluster, name);
  await stopNodeDaemons(cluster, name);
  await new NodeCgroups(node.cgroupRoot).destroy();
  await new NodeMountNamespace(node.mountFile, nodePaths(node.dir)).destroy();
  await execFileP("ip", ["netns", "del", node.ns]).catch(() => undefined);
  await cluster.kubectl(["delete", "node", name, "--wait=true", "--timeout=60s"]);
}
