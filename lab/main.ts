import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  ClusterNetwork,
  cmdline,
  formatConnectivity,
  joinFlannelNode,
  kubectl,
  type Mode,
  readState,
  removeNamespaces,
  repoRoot,
  requireRoot,
  startControlPlane,
  stopControlPlane,
  stopPid,
  TestEtcd,
} from "../devenv/index.js";
import { errorMessage } from "../lib/index.js";
import {
  choiceProblem,
  DATASTORES,
  type Datastore,
  familiesOf,
  hints,
  type LabChoice,
  labPools,
  MODES,
  podFamilies,
  STACKS,
  type Stack,
  TOPOLOGIES,
  type Topology,
} from "./plan.js";

/**
 * `make lab`: a whole Weft cluster network on this machine: kube-apiserver + etcd, the CRDs, a
 * default pool per family, weft-controller, three nodes (network namespaces on an underlay
 * bridge, behind a router with an "outside" host) each with its weft-agent, two pods per node
 * created through weft-cni, and a connectivity matrix per family. The lab owns its apiserver:
 * the controller and agents are not scoped to a label, so whatever a user applies there is
 * Weft's. DATASTORE=etcd adds an etcd of its own (TLS) holding the weft.dev objects;
 * FLANNEL_NODES=n (etcd, vxlan or host-gw) adds n hosts that run the real flanneld in the same
 * network, each with two pods wired the Flannel way (a mixed cluster);
 * STACK=dual|ipv6 gives the underlay both families and the pods IPv6 (too); TOPOLOGY=two-subnets
 * puts the nodes on two subnets joined by the router (CrossSubnet VXLAN). Everything it starts is
 * recorded in .weft/lab/ so `make lab-down` removes exactly that, by pid and by name.
 */
const LAB_ID = "weft-lab";
const labDir = join(repoRoot, ".weft", "lab");
const cpDir = join(labDir, "controlplane");
const runDir = join(labDir, "run");
const etcdDir = join(labDir, "etcd");
const stateFile = join(labDir, "network.json");
const kubeconfigPath = join(labDir, "kubeconfig");

const NODES = 3;
const PODS_PER_NODE = 2;

interface LabNetworkState {
  id: string;
  mode: Mode;
  datastore: Datastore;
  stack: Stack;
  topology: Topology;
  pids: number[];
  /** The lab's own etcd (DATASTORE=etcd), stopped by pid on lab-down. */
  etcdPid?: number;
}

/** BIRD daemons of the lab's agents, from their pid files: normally they die with their agent. */
function birdPids(): number[] {
  if (!existsSync(runDir)) return [];
  const pids: number[] = [];
  for (const node of readdirSync(runDir)) {
    try {
      const pid = Number(readFileSync(join(runDir, node, "bird", "bird.pid"), "utf8").trim());
      // only a BIRD started with this lab's files, never a reused pid
      if (Number.isInteger(pid) && pid > 1 && cmdline(pid).includes(join(runDir, node))) pids.push(pid);
    } catch {
      /* not a BGP node */
    }
  }
  return pids;
}

/** Stops the lab's processes (etcd included) by pid and deletes its namespaces; the control plane stays. */
async function removeNetwork(): Promise<void> {
  const birds = birdPids();
  if (existsSync(stateFile)) {
    const state = JSON.parse(readFileSync(stateFile, "utf8")) as LabNetworkState;
    await Promise.all(state.pids.map((pid) => stopPid(pid, 5000)));
    if (state.etcdPid) await stopPid(state.etcdPid, 5000);
    rmSync(stateFile);
  }
  await Promise.all(birds.map((pid) => stopPid(pid, 3000)));
  await removeNamespaces(LAB_ID);
  rmSync(runDir, { recursive: true, force: true });
  rmSync(etcdDir, { recursive: true, force: true });
}

async function ensureControlPlane() {
  mkdirSync(labDir, { recursive: true });
  const existing = readState(cpDir);
  // A second `make lab` starts afresh on a fresh API: objects of the old one go too.
  if (existing) await stopControlPlane(existing);
  mkdirSync(cpDir, { recursive: true });
  console.log("starting kube-apiserver and etcd, applying the weft.dev CRDs ...");
  const cp = await startControlPlane({ dir: cpDir });
  writeFileSync(kubeconfigPath, readFileSync(cp.kubeconfig));
  console.log(`control plane running at ${cp.server}`);
  return cp;
}

async function up(choice: LabChoice, flannelNodes: number): Promise<void> {
  const { mode, datastore, stack, topology } = choice;
  requireRoot("make lab");
  const started = Date.now();
  await removeNetwork();
  const cp = await ensureControlPlane();
  let etcd: TestEtcd | undefined;
  const pids: number[] = [];
  const save = () =>
    writeFileSync(
      stateFile,
      JSON.stringify(
        {
          id: LAB_ID,
          mode,
          datastore,
          stack,
          topology,
          pids,
          ...(etcd ? { etcdPid: etcd.pid } : {}),
        } satisfies LabNetworkState,
        null,
        2,
      ),
    );
  if (datastore === "etcd") {
    console.log("starting the lab's own etcd (TLS) for the weft.dev objects ...");
    etcd = await TestEtcd.start({ dir: etcdDir });
    save();
    console.log(`etcd running at ${etcd.client.endpoints.join(",")}`);
  }
  const net = new ClusterNetwork({
    id: LAB_ID,
    runDir,
    cp,
    ...(mode === "bgp-rr" ? { routeReflectors: 2 } : {}),
    ...(etcd ? { datastore: "etcd" as const, etcd } : {}),
    scoped: false,
    topology: {
      stack: stack === "ipv4" ? "ipv4" : "dual",
      subnets: topology === "two-subnets" ? 2 : 1,
      outside: true,
    },
    podFamilies: podFamilies(stack),
  });
  const record = () => {
    pids.splice(0, pids.length, ...net.topo.pids);
    save();
  };
  try {
    for (const pool of labPools(net, choice)) await net.createPool(pool);
    const where =
      topology === "two-subnets" ? "two underlay subnets joined by a router" : "an underlay bridge";
    console.log(`creating ${NODES} nodes (network namespaces on ${where}) with their agents ...`);
    await net.up(NODES);
    record();
    await net.waitConverged(120_000);
    for (let i = 1; i <= NODES; i++) {
      for (let p = 0; p < PODS_PER_NODE; p++) {
        await net.addPodViaCni(net.nodeName(i), `${LAB_ID}-pod-${i}${"abcdefgh"[p]}`);
      }
    }
    record();
    for (let k = 0; k < flannelNodes && etcd; k++) {
      console.log("adding a host that runs flanneld (v0.26.7) in the same network ...");
      const f = await joinFlannelNode(net, etcd, PODS_PER_NODE);
      record();
      console.log(`flanneld on ${f.flanneld.node.name} holds ${f.subnet}`);
    }
    if (mode === "bgp" || mode === "bgp-rr") {
      console.log("waiting for BIRD to carry every node's blocks to every other node ...");
      await net.waitBgpRoutes(90_000);
    }
    if (etcd) {
      for (const prefix of ["/weft/v1alpha1", "/coreos.com/network"]) {
        const keys = (await etcd.etcdctl(["get", prefix, "--prefix", "--keys-only"]))
          .split("\n")
          .filter(Boolean);
        console.log(`\netcd keys under ${prefix}:\n${keys.map((k) => `  ${k}`).join("\n")}`);
      }
      console.log("");
    } else {
      console.log(
        `\n${await kubectl(kubeconfigPath, ["get", "ippools,ipamblocks,routeintents,nodenetworkstatuses"])}`,
      );
    }
    let failed = false;
    for (const family of familiesOf(stack)) {
      // flanneld's hosts are routed to once their lease is a RouteIntent every agent applied
      const result =
        flannelNodes > 0 ? await net.waitConnectivity(60_000, family) : await net.connectivity(family);
      console.log(`${formatConnectivity(result, family)}\n`);
      if (result.ok !== result.total) failed = true;
    }
    const outside = net.topo.outside;
    const pods = [...net.topo.pods.values()];
    const reach = await Promise.all(pods.map((p) => net.topo.ping(p, outside.ip, 2)));
    if (stack !== "ipv6")
      console.log(
        `outside host ${outside.ip} (behind the underlay router; pods masqueraded, natOutgoing): ${reach.filter(Boolean).length}/${pods.length} pods reach it`,
      );
    const n1 = net.topo.nodes.get(net.nodeName(1))!;
    console.log(`
Weft lab is up (mode ${mode}, datastore ${datastore}, stack ${stack}, ${topology}, ${((Date.now() - started) / 1000).toFixed(1)} s); it keeps running. Look around:
${hints({ mode, datastore, stack, topology, outside, kubeconfig: kubeconfigPath, runDir, node: n1, etcd }).join("\n")}
Stop it with: make lab-down`);
    if (failed) process.exitCode = 1;
    await net.detach();
  } catch (err) {
    record();
    console.error(net.logTails());
    await net.detach().catch(() => undefined);
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
      "flannel-nodes": { type: "string", default: "0" },
      stack: { type: "string", default: "ipv4" },
      topology: { type: "string", default: "one-subnet" },
    },
  });
  const mode = values.mode as Mode;
  const datastore = values.datastore as Datastore;
  const stack = values.stack as Stack;
  const topology = values.topology as Topology;
  if (!MODES.includes(mode)) throw new Error(`unknown MODE ${mode}; choose one of ${MODES.join(", ")}`);
  if (!DATASTORES.includes(datastore))
    throw new Error(`unknown DATASTORE ${datastore}; choose one of ${DATASTORES.join(", ")}`);
  if (!STACKS.includes(stack)) throw new Error(`unknown STACK ${stack}; choose one of ${STACKS.join(", ")}`);
  if (!TOPOLOGIES.includes(topology))
    throw new Error(`unknown TOPOLOGY ${topology}; choose one of ${TOPOLOGIES.join(", ")}`);
  const flannelNodes = Number(values["flannel-nodes"]);
  if (!Number.isInteger(flannelNodes) || flannelNodes < 0)
    throw new Error(`FLANNEL_NODES must be a whole number, not ${values["flannel-nodes"]}`);
  if (flannelNodes > 0 && (datastore !== "etcd" || (mode !== "vxlan" && mode !== "host-gw")))
    throw new Error("FLANNEL_NODES needs DATASTORE=etcd and MODE=vxlan or host-gw (Flannel's own backends)");
  if (flannelNodes > 0 && stack !== "ipv4")
    throw new Error("FLANNEL_NODES needs STACK=ipv4 (Flannel's IPv4 network)");
  const choice = { mode, datastore, stack, topology };
  const problem = choiceProblem(choice);
  if (positionals[0] === "up" && problem) throw new Error(problem);
  if (positionals[0] === "up") await up(choice, flannelNodes);
  else if (positionals[0] === "down") await down();
  else
    throw new Error(
      "usage: lab/main.js up|down [--mode vxlan|host-gw|bgp|bgp-rr] [--datastore kubernetes|etcd] [--stack ipv4|dual|ipv6] [--topology one-subnet|two-subnets] [--flannel-nodes N]",
    );
}

main().catch((err: unknown) => {
  console.error(`lab: ${errorMessage(err)}`);
  process.exitCode = 1;
});
