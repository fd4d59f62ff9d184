import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  checkDns,
  checkService,
  deployWorkload,
  destroyRealCluster,
  formatConnectivity,
  installWeft,
  podMatrix,
  REAL_NODE_MODES,
  RealCluster,
  type RealNodeMode,
  readClusterState,
  repoRoot,
  serviceIP,
} from "../devenv/index.js";

/**
 * `make lab NODES=kubelet`: Weft on real nodes. A control plane with kube-controller-manager,
 * kube-scheduler and CoreDNS, NODE_COUNT kubelets with containerd and kube-proxy, Weft installed
 * with `helm install weft charts/weft` from the image built here, a Deployment of agnhost pods
 * spread over the nodes, then the pod-to-pod matrix, a ClusterIP Service and cluster DNS checked
 * from every pod through `kubectl exec`. It keeps running; `make lab-down` removes it.
 */
const labDir = join(repoRoot, ".weft", "lab-kubelet");
const kubeconfigLink = join(repoRoot, ".weft", "lab-kubelet.kubeconfig");
const PODS_PER_NODE = 2;

async function up(mode: RealNodeMode, nodes: number): Promise<void> {
  const started = Date.now();
  const existing = readClusterState(labDir);
  if (existing) await destroyRealCluster(existing);
  console.log(`starting a control plane and ${nodes} real nodes (kubelet, containerd, kube-proxy) ...`);
  const cluster = await RealCluster.start({ id: "weft-lab-k", dir: labDir, nodes });
  const t = cluster.timings;
  console.log(
    `cluster up in ${t.totalSeconds.toFixed(1)} s (images ${t.imagesSeconds.toFixed(1)} s, control plane ${t.controlPlaneSeconds.toFixed(1)} s)`,
  );
  writeFileSync(kubeconfigLink, readFileSync(cluster.kubeconfig));
  console.log(`helm install weft charts/weft (mode ${mode}, image ${(await cluster.images).weft.ref}) ...`);
  await installWeft(cluster, mode);
  await cluster.waitNodesReady();
  console.log(`\n${await cluster.kubectl(["get", "pods", "-A", "-o", "wide"])}`);
  const pods = await deployWorkload(cluster, nodes * PODS_PER_NODE);
  const matrix = await podMatrix(cluster, pods);
  console.log(formatConnectivity(matrix));
  const ip = await serviceIP(cluster);
  let failures = matrix.total - matrix.ok;
  for (const p of pods) {
    const svc = await checkService(cluster, p, ip);
    const dns = await checkDns(cluster, p, ip);
    if (!svc) failures++;
    if (!dns.ok) failures++;
    console.log(
      `${p.name.padEnd(28)} ${p.node.padEnd(18)} service ${ip}: ${svc ? "ok" : "FAIL"}   dns netcheck.default.svc.cluster.local -> ${dns.answer || "(no answer)"}: ${dns.ok ? "ok" : "FAIL"}`,
    );
  }
  const mem = cluster.nodeMemory();
  console.log(
    `\nWeft lab on real nodes is up (mode ${mode}, ${nodes} nodes, ${((Date.now() - started) / 1000).toFixed(1)} s). Node daemons' memory (MiB): ${JSON.stringify(mem)}
Look around:
  export KUBECONFIG=${kubeconfigLink}
  kubectl get pods -A -o wide
  kubectl get ippools,ipamblocks,routeintents,nodenetworkstatuses
  kubectl -n kube-system logs ds/weft-agent
  kubectl exec deploy/netcheck -- ip route
Logs of every component: ${labDir}
Stop it with: make lab-down`,
  );
  if (failures > 0) process.exitCode = 1;
}

async function down(): Promise<void> {
  const existing = readClusterState(labDir);
  if (existing) await destroyRealCluster(existing);
  else if (existsSync(labDir)) rmSync(labDir, { recursive: true, force: true });
  rmSync(kubeconfigLink, { force: true });
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { mode: { type: "string", default: "vxlan" }, nodes: { type: "string", default: "3" } },
  });
  const mode = values.mode as RealNodeMode;
  if (!REAL_NODE_MODES.includes(mode))
    throw new Error(`unknown MODE ${mode} for real nodes; choose one of ${REAL_NODE_MODES.join(", ")}`);
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 20)
    throw new Error(`NODE_COUNT ${values.nodes}: 1 to 20`);
  if (positionals[0] === "up") await up(mode, nodes);
  else if (positionals[0] === "down") await down();
  else throw new Error("usage: lab/kubelet.js up|down [--mode vxlan|host-gw|bgp] [--nodes N]");
}

main().catch((err: unknown) => {
  console.error(`lab: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
