import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ClusterNetwork, formatConnectivity, type Mode } from "../test/harness/clusternet.js";
import { kubectl, readState, startControlPlane, stopControlPlane } from "../test/harness/controlplane.js";
import { alive, stopPid } from "../test/harness/procs.js";
import { repoRoot } from "../test/harness/tools.js";
import { removeNamespaces, requireRoot } from "../test/harness/topology.js";

/**
 * `make lab`: a whole Weft cluster network on this machine: kube-apiserver + etcd, the CRDs, a
 * default pool, weft-controller, three nodes (network namespaces on an underlay bridge) each with
 * its weft-agent, two pods per node created through weft-cni, and a connectivity matrix. Everything it starts is recorded
 * in .weft/lab/ so `make lab-down` removes exactly that, by pid and by name.
 */
const LAB_ID = "weft-lab";
const labDir = join(repoRoot, ".weft", "lab");
const cpDir = join(labDir, "controlplane");
const runDir = join(labDir, "run");
const stateFile = join(labDir, "network.json");
const kubeconfigPath = join(labDir, "kubeconfig");

const MODES: readonly Mode[] = ["vxlan", "host-gw", "bgp", "bgp-rr"];
const NODES = 3;
const PODS_PER_NODE = 2;

interface LabNetworkState {
  id: string;
  mode: Mode;
  pids: number[];
}

/** Stops the lab's processes by pid and deletes its namespaces; the control plane stays. */
async function removeNetwork(): Promise<void> {
  if (existsSync(stateFile)) {
    const state = JSON.parse(readFileSync(stateFile, "utf8")) as LabNetworkState;
    await Promise.all(state.pids.map((pid) => stopPid(pid, 5000)));
    rmSync(stateFile);
  }
  await removeNamespaces(LAB_ID);
  rmSync(runDir, { recursive: true, force: true });
}

async function ensureControlPlane() {
  mkdirSync(labDir, { recursive: true });
  const existing = readState(cpDir);
  if (existing && alive(existing.apiserverPid) && alive(existing.etcdPid)) {
    // A second `make lab` starts the network afresh on a fresh API: objects of the old one go too.
    await stopControlPlane(existing);
  } else if (existing) {
    await stopControlPlane(existing);
  }
  mkdirSync(cpDir, { recursive: true });
  console.log("starting kube-apiserver and etcd, applying the weft.dev CRDs ...");
  const cp = await startControlPlane({ dir: cpDir });
  writeFileSync(kubeconfigPath, readFileSync(cp.kubeconfig));
  console.log(`control plane running at ${cp.server}`);
  return cp;
}

async function up(mode: Mode): Promise<void> {
  requireRoot("make lab");
  await removeNetwork();
  const cp = await ensureControlPlane();
  const net = new ClusterNetwork({ id: LAB_ID, runDir, cp });
  const save = () =>
    writeFileSync(
      stateFile,
      JSON.stringify({ id: LAB_ID, mode, pids: net.topo.pids } satisfies LabNetworkState, null, 2),
    );
  try {
    await net.createPool(net.pool("default", "10.244.0.0/16", mode));
    console.log(`creating ${NODES} nodes (network namespaces on an underlay bridge) with their agents ...`);
    await net.up(NODES);
    save();
    await net.waitConverged(120_000);
    for (let i = 1; i <= NODES; i++) {
      for (let p = 0; p < PODS_PER_NODE; p++) {
        await net.addPodViaCni(net.nodeName(i), `${LAB_ID}-pod-${i}${"abcdefgh"[p]}`);
      }
    }
    save();
    console.log(
      `\n${await kubectl(kubeconfigPath, ["get", "ippools,ipamblocks,routeintents,nodenetworkstatuses"])}`,
    );
    const result = await net.connectivity();
    console.log(formatConnectivity(result));
    const n1 = net.topo.nodes.get(net.nodeName(1))!;
    console.log(`
Weft lab is up (mode ${mode}); it keeps running. Look around:
  export KUBECONFIG=${kubeconfigPath}
  kubectl get weft
  kubectl get routeintent ${n1.name} -o yaml        # how other nodes reach ${n1.name}
  kubectl get ipamblocks -o yaml                     # each pod's address with its namespace/name
  kubectl wait --for=condition=Ready ippool/default
  ip netns exec ${n1.ns} ip route                     # a node's kernel state
  ip netns exec ${n1.ns} ip neigh show dev weft.vxlan
  bridge -n ${n1.ns} fdb show dev weft.vxlan
  cat ${runDir}/agent-${n1.name}.log
Stop it with: make lab-down`);
    if (result.ok !== result.total) process.exitCode = 1;
    await net.detach();
  } catch (err) {
    save();
    console.error(net.logTails());
    throw err;
  }
}

async function down(): Promise<void> {
  await removeNetwork();
  const cp = readState(cpDir);
  if (cp) await stopControlPlane(cp);
  rmSync(kubeconfigPath, { force: true });
  console.log("lab stopped: its processes are gone and its namespaces removed");
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      mode: { type: "string", default: "vxlan" },
      datastore: { type: "string", default: "kubernetes" },
    },
  });
  const mode = values.mode as Mode;
  if (!MODES.includes(mode)) throw new Error(`unknown MODE ${mode}; choose one of ${MODES.join(", ")}`);
  if (values.datastore !== "kubernetes")
    throw new Error(`DATASTORE=${values.datastore} is not supported yet`);
  if (positionals[0] === "up") await up(mode);
  else if (positionals[0] === "down") await down();
  else throw new Error("usage: lab/main.js up|down [--mode vxlan|host-gw|bgp|bgp-rr]");
}

main().catch((err: unknown) => {
  console.error(`lab: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
