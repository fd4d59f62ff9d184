import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import type { ImageSet } from "../images/build.js";
import { AGNHOST_IMAGE, WEFT_REPOSITORY } from "../images/recipes.js";
import { waitFor } from "../procs.js";
import { repoRoot, tool } from "../tools.js";
import type { RealCluster } from "./cluster.js";

/**
 * Weft on a real-node cluster the way users install it (helm install charts/weft with the image
 * built here), and the workload that proves it: agnhost pods spread over the nodes behind a
 * ClusterIP Service, checked from inside every pod through `kubectl exec`.
 */

export type RealNodeMode = "vxlan" | "host-gw" | "bgp";
export const REAL_NODE_MODES: readonly RealNodeMode[] = ["vxlan", "host-gw", "bgp"];

export const WORKLOAD = { namespace: "default", name: "netcheck", port: 8080, servicePort: 80 } as const;

/** Chart values for the locally built image: nothing is pulled (pullPolicy Never). */
export function weftValues(images: ImageSet, mode: RealNodeMode): Record<string, string> {
  const tag = images.weft.ref.slice(`${WEFT_REPOSITORY}:`.length);
  return { "image.repository": WEFT_REPOSITORY, "image.tag": tag, "image.pullPolicy": "Never", mode };
}

/** `helm install weft charts/weft` into kube-system, then waits for the agents and a controller. */
export async function installWeft(
  cluster: RealCluster,
  mode: RealNodeMode,
  timeoutMs = 180_000,
): Promise<void> {
  const images = await cluster.images;
  const values = Object.entries(weftValues(images, mode)).flatMap(([k, v]) => ["--set-string", `${k}=${v}`]);
  const args = ["--kubeconfig", cluster.kubeconfig, "install", "weft", join(repoRoot, "charts", "weft")];
  await promisify(execFile)(tool("helm"), [...args, "--namespace", "kube-system", ...values]).catch(
    (err: { stderr?: string; message: string }) => {
      throw new Error(`helm install weft failed: ${err.stderr?.trim() || err.message}`);
    },
  );
  const seconds = `${Math.round(timeoutMs / 1000)}s`;
  await cluster.kubectl([
    "-n",
    "kube-system",
    "rollout",
    "status",
    "daemonset/weft-agent",
    `--timeout=${seconds}`,
  ]);
  await cluster.kubectl([
    "-n",
    "kube-system",
    "wait",
    "--for=condition=Available",
    "deployment/weft-controller",
    `--timeout=${seconds}`,
  ]);
}

/** The checking workload: agnhost netexec pods spread one per node (or as even as it goes), and a Service. */
export function workloadManifest(replicas: number): string {
  const { name, namespace, port, servicePort } = WORKLOAD;
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        labelSelector: {matchLabels: {app: ${name}}}
      containers:
      - name: agnhost
        image: ${AGNHOST_IMAGE}
        imagePullPolicy: Never
        args: [netexec, --http-port=${port}]
        readinessProbe:
          httpGet: {path: /healthz, port: ${port}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  selector: {app: ${name}}
  ports:
  - {port: ${servicePort}, targetPort: ${port}, protocol: TCP}
`;
}

export interface WorkloadPod {
  name: string;
  ip: string;
  node: string;
}

interface PodList {
  items: Array<{
    metadata: { name: string; deletionTimestamp?: string };
    spec: { nodeName?: string };
    status: { podIP?: string; conditions?: Array<{ type: string; status: string }> };
  }>;
}

/** Applies the workload and waits until every replica is Ready with an address. */
export async function deployWorkload(
  cluster: RealCluster,
  replicas: number,
  timeoutMs = 120_000,
): Promise<WorkloadPod[]> {
  await cluster.kubectl(["apply", "-f", "-"], workloadManifest(replicas));
  return waitFor(
    `${replicas} ${WORKLOAD.name} pods Ready`,
    async () => {
      const list = JSON.parse(
        await cluster.kubectl([
          "-n",
          WORKLOAD.namespace,
          "get",
          "pods",
          "-l",
          `app=${WORKLOAD.name}`,
          "-o",
          "json",
        ]),
      ) as PodList;
      const ready = list.items.filter(
        (p) =>
          !p.metadata.deletionTimestamp &&
          p.status.podIP &&
          p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      );
      if (ready.length !== replicas) return undefined;
      return ready
        .map((p) => ({ name: p.metadata.name, ip: p.status.podIP as string, node: p.spec.nodeName ?? "" }))
        .sort((a, b) => a.node.localeCompare(b.node) || a.name.localeCompare(b.name));
    },
    timeoutMs,
    500,
  );
}

/** Runs a shell script inside a pod; stdout, or the error's text. */
function execIn(cluster: RealCluster, pod: string, script: string): Promise<string> {
  return cluster.kubectl(["-n", WORKLOAD.namespace, "exec", pod, "--", "/bin/sh", "-c", script]);
}

/** A script that tries TCP connections to each target and prints "<target> ok|fail" per line. */
export function connectScript(targets: string[], timeoutSec = 3): string {
  return targets
    .map(
      (t) =>
        `if /agnhost connect --timeout=${timeoutSec}s ${t} >/dev/null 2>&1; then echo "${t} ok"; else echo "${t} fail"; fi`,
    )
    .join("; ");
}

/** Parses connectScript's output into target -> reached. */
export function parseConnectOutput(out: string): Map<string, boolean> {
  const result = new Map<string, boolean>();
  for (const line of out.split("\n")) {
    const [target, verdict] = line.trim().split(" ");
    if (target && verdict) result.set(target, verdict === "ok");
  }
  return result;
}

export interface Matrix {
  ok: number;
  total: number;
  matrix: Map<string, Map<string, boolean>>;
}

/** Every pod connects to every other pod's address (TCP to netexec), one exec per source pod. */
export async function podMatrix(cluster: RealCluster, pods: WorkloadPod[]): Promise<Matrix> {
  const matrix = new Map<string, Map<string, boolean>>();
  let ok = 0;
  let total = 0;
  const rows = await Promise.all(
    pods.map(async (from) => {
      const others = pods.filter((p) => p !== from);
      const out = await execIn(
        cluster,
        from.name,
        connectScript(others.map((p) => `${p.ip}:${WORKLOAD.port}`)),
      ).catch(() => "");
      const reached = parseConnectOutput(out);
      return [
        from,
        new Map(others.map((to) => [to.name, reached.get(`${to.ip}:${WORKLOAD.port}`) === true])),
      ] as const;
    }),
  );
  for (const [from, row] of rows) {
    matrix.set(from.name, row);
    for (const up of row.values()) {
      total++;
      if (up) ok++;
    }
  }
  return { ok, total, matrix };
}

/** The workload Service's ClusterIP. */
export async function serviceIP(cluster: RealCluster): Promise<string> {
  return (
    await cluster.kubectl([
      "-n",
      WORKLOAD.namespace,
      "get",
      "service",
      WORKLOAD.name,
      "-o",
      "jsonpath={.spec.clusterIP}",
    ])
  ).trim();
}

/** From one pod: the Service's ClusterIP answers (kube-proxy's DNAT to a pod on any node). */
export async function checkService(cluster: RealCluster, pod: WorkloadPod, ip: string): Promise<boolean> {
  const target = `${ip}:${WORKLOAD.servicePort}`;
  const out = await execIn(cluster, pod.name, connectScript([target])).catch(() => "");
  return parseConnectOutput(out).get(target) === true;
}

/** From one pod: cluster DNS resolves the Service's name to its ClusterIP (CoreDNS through the kube-dns Service). */
export async function checkDns(
  cluster: RealCluster,
  pod: WorkloadPod,
  ip: string,
): Promise<{ ok: boolean; answer: string }> {
  const fqdn = `${WORKLOAD.name}.${WORKLOAD.namespace}.svc.cluster.local`;
  const answer = (
    await execIn(cluster, pod.name, `dig +short +time=3 +tries=2 ${fqdn}`).catch(() => "")
  ).trim();
  return { ok: answer === ip, answer };
}
