import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as k8s from "@kubernetes/client-node";
import {
  installWeft,
  ip,
  PAUSE_IMAGE,
  RealCluster,
  reapRealClusters,
  sleep,
  waitFor,
} from "../../devenv/index.js";
import { type Summary, summarize } from "../cni/stats.js";

/**
 * Pod start on one real node: a Deployment scaled 0 -> N (100) until every pod is Ready, with
 * Weft (installed by its chart) and, in the same run on the same kubelet and containerd, with
 * Debian's `bridge` + `host-local` chain put in front of it. Each pod's start is the time from
 * its creation to its Ready condition as seen on one watch of the apiserver (both ends observed
 * by the same watch, so the watch's own delay cancels out); the total is from the scale request
 * to the last pod Ready. Networks alternate per round (reference, Weft, reference, Weft ...) and
 * every pod of one round is gone, and its interface with it, before the next round starts.
 */
const { values } = parseArgs({
  options: {
    pods: { type: "string", default: "100" },
    rounds: { type: "string", default: "1" },
    mode: { type: "string", default: "vxlan" },
  },
});
const PODS = Number(values.pods);
const ROUNDS = Number(values.rounds);
const NAME = "podstart";
const NS = "default";

interface PodTimes {
  created?: number;
  ready?: number;
}

interface RoundResult {
  network: string;
  /** Scale request to the last pod Ready, ms. */
  totalMs: number;
  /** Per pod, created -> Ready, ms. */
  start: Summary;
  maxMs: number;
}

function deployment(replicas: number): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${NAME}, namespace: ${NS}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${NAME}}}
  template:
    metadata: {labels: {app: ${NAME}}}
    spec:
      terminationGracePeriodSeconds: 0
      enableServiceLinks: false
      automountServiceAccountToken: false
      containers:
      - name: pause
        image: ${PAUSE_IMAGE}
        imagePullPolicy: Never
`;
}

interface PodObj {
  metadata: { name: string };
  status?: { conditions?: Array<{ type: string; status: string }> };
}

/** Watches the benchmark's pods and records when each was first seen and first seen Ready. */
async function watchPods(kc: k8s.KubeConfig, times: Map<string, PodTimes>): Promise<AbortController> {
  const watch = new k8s.Watch(kc);
  return watch.watch(
    `/api/v1/namespaces/${NS}/pods`,
    { labelSelector: `app=${NAME}` },
    (phase, obj: PodObj) => {
      const now = performance.now();
      const name = obj.metadata.name;
      if (phase === "DELETED") return;
      const t = times.get(name) ?? {};
      t.created ??= now;
      if (
        t.ready === undefined &&
        obj.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")
      )
        t.ready = now;
      times.set(name, t);
    },
    () => undefined,
  );
}

async function podCount(cluster: RealCluster): Promise<number> {
  const out = await cluster.kubectl(["-n", NS, "get", "pods", "-l", `app=${NAME}`, "-o", "name"]);
  return out.split("\n").filter(Boolean).length;
}

/** Interfaces of pods on the node (host sides of their veths): Weft's `weft*`, the bridge's `veth*`. */
async function podLinks(ns: string): Promise<number> {
  const out = await ip(["-n", ns, "-o", "link", "show"]);
  return out.split("\n").filter((l) => /^\d+: (weft[0-9a-f]{11}|veth[0-9a-f]+)@/.test(l)).length;
}

async function round(
  cluster: RealCluster,
  kc: k8s.KubeConfig,
  network: string,
  nodeNs: string,
  baseline: number,
): Promise<RoundResult> {
  const times = new Map<string, PodTimes>();
  const watch = await watchPods(kc, times);
  try {
    const t0 = performance.now();
    await cluster.kubectl(["-n", NS, "scale", `deployment/${NAME}`, `--replicas=${PODS}`]);
    await waitFor(
      `${PODS} pods Ready (${network})`,
      () => {
        const ready = [...times.values()].filter((t) => t.ready !== undefined).length;
        return ready >= PODS ? true : undefined;
      },
      15 * 60_000,
      50,
    );
    const done = [...times.values()];
    const last = Math.max(...done.map((t) => t.ready!));
    const starts = done.map((t) => t.ready! - t.created!);
    const result = {
      network,
      totalMs: Math.round(last - t0),
      start: summarize(starts),
      maxMs: Math.round(Math.max(...starts)),
    };
    console.log(
      `${network.padEnd(18)} 0 -> ${PODS} Ready in ${(result.totalMs / 1000).toFixed(1)} s; per pod created -> Ready p50 ${(result.start.p50 / 1000).toFixed(2)} s, p99 ${(result.start.p99 / 1000).toFixed(2)} s, max ${(result.maxMs / 1000).toFixed(2)} s`,
    );
    return result;
  } finally {
    watch.abort();
    // down to zero, and every pod's interface gone (CNI DEL done) before the network changes
    await cluster.kubectl(["-n", NS, "scale", `deployment/${NAME}`, "--replicas=0"]);
    await waitFor(
      `every ${network} pod gone and its interface removed`,
      async () =>
        (await podCount(cluster)) === 0 && (await podLinks(nodeNs)) <= baseline ? true : undefined,
      10 * 60_000,
      500,
    );
  }
}

async function main(): Promise<void> {
  const reaped = await reapRealClusters();
  if (reaped) console.log(`reaped ${reaped} real-node cluster(s) left by an earlier run`);
  const loadStart = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const cluster = await RealCluster.start({
    id: `wps${process.pid.toString(36)}`,
    nodes: 1,
    ownerPid: process.pid,
  });
  const stop = () => cluster.destroy().catch((err: unknown) => console.error(String(err)));
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.on(sig, () => void stop().finally(() => process.exit(130)));
  try {
    const mode = values.mode as "vxlan" | "host-gw" | "bgp";
    await installWeft(cluster, mode);
    await cluster.waitNodesReady();
    const node = cluster.state.nodes[0]!;
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    await cluster.kubectl(["apply", "-f", "-"], deployment(0));
    // the weft-controller's pod has a Weft interface of its own: the floor when the round's pods are gone
    const baseline = await podLinks(node.ns);
    console.log(
      `one real node (${node.name}), Weft ${mode} from its chart; ${PODS} pods (${PAUSE_IMAGE}) per round, ${ROUNDS} round(s) per network; load ${loadStart}`,
    );
    const results: RoundResult[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      cluster.useReferenceCni(node.name, true);
      await sleep(2000); // containerd reloads its CNI configuration on a file event
      results.push(await round(cluster, kc, "bridge+host-local", node.ns, baseline));
      cluster.useReferenceCni(node.name, false);
      await sleep(2000);
      results.push(await round(cluster, kc, "weft", node.ns, baseline));
    }
    const pick = (network: string) => {
      const rs = results.filter((x) => x.network === network);
      const best = rs.reduce((a, b) => (b.totalMs < a.totalMs ? b : a));
      return { rounds: rs, best };
    };
    const weft = pick("weft");
    const ref = pick("bridge+host-local");
    const ratio = Math.round((weft.best.totalMs / ref.best.totalMs) * 100) / 100;
    const p99Ratio = Math.round((weft.best.start.p99 / ref.best.start.p99) * 100) / 100;
    const loadEnd = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    console.log(
      `ratio weft / bridge+host-local: total ${ratio}, per-pod p99 ${p99Ratio} (target <= 1.2); Weft p99 ${(weft.best.start.p99 / 1000).toFixed(2)} s (target < 5 s)`,
    );
    console.log(
      JSON.stringify({
        bench: "podstart",
        pods: PODS,
        rounds: ROUNDS,
        mode,
        load: { start: loadStart, end: loadEnd },
        weft: weft.rounds,
        reference: ref.rounds,
        ratio: { total: ratio, p99: p99Ratio },
        headline: {
          metric:
            "pod start, Deployment 0 -> 100 on one real node, total time ratio Weft / bridge+host-local",
          value: ratio,
          target: 1.2,
          unit: "ratio",
          peer: "Debian bridge + host-local on the same kubelet, same run",
        },
      }),
    );
    console.log(
      `timed span: from the 'kubectl scale --replicas=${PODS}' request to the last pod seen Ready on a watch (the Deployment and ReplicaSet controllers, the scheduler, the kubelet, containerd's sandbox with the CNI ADD, the pause container, the status update); per pod from its first watch event to the event with Ready=True. Not included: cluster start, Weft install, scale-down and CNI DEL.`,
    );
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  console.error(`podstart: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
