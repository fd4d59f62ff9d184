import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { formatConnectivity } from "../../devenv/clusternet.js";
import { HUB_IP, RealCluster, reapRealClusters } from "../../devenv/realnodes/cluster.js";
import { runE2E, specPattern, summaryText } from "../../devenv/realnodes/e2e.js";
import {
  checkDns,
  checkService,
  deployWorkload,
  installWeft,
  podMatrix,
  REAL_NODE_MODES,
  type RealNodeMode,
  serviceIP,
  type WorkloadPod,
} from "../../devenv/realnodes/workload.js";
import { repoRoot } from "../../devenv/tools.js";
import { leftovers, readSysctls } from "./leftovers.js";

/**
 * Weft as users run it: `helm install weft charts/weft` with the image built from the Dockerfile,
 * on real kubelets. The agent's init container installs weft-cni, the kubelets call it for every
 * pod, and pods on different nodes reach each other, a ClusterIP Service and cluster DNS. Then,
 * on the same cluster, a subset of Kubernetes' own [sig-network] Conformance specs (e2e.test;
 * `make conformance` runs all of them on three nodes). WEFT_REALNODES_MODE picks the mode
 * (default vxlan).
 */
const mode = (process.env.WEFT_REALNODES_MODE ?? "vxlan") as RealNodeMode;
if (!REAL_NODE_MODES.includes(mode))
  throw new Error(`WEFT_REALNODES_MODE=${mode}: one of ${REAL_NODE_MODES.join(", ")}`);
const id = `rw${process.pid.toString(36)}`;
const sysctlsBefore = readSysctls();
let cluster: RealCluster | undefined;
let pods: WorkloadPod[] = [];

before(async () => {
  const reaped = await reapRealClusters();
  if (reaped) console.log(`# reaped ${reaped} real-node cluster(s) left by an earlier run`);
  cluster = await RealCluster.start({ id, nodes: 2, ownerPid: process.pid });
  console.log(`# real-node cluster: ${JSON.stringify(cluster.timings)}`);
});

after(async () => {
  await cluster?.destroy();
});

test(`helm install weft (mode ${mode}) runs the controller and an agent per node from the local image, and the nodes turn Ready`, async () => {
  const c = cluster!;
  const t0 = Date.now();
  try {
    await installWeft(c, mode);
  } catch (err) {
    const pods = await c.kubectl(["get", "pods", "-A", "-o", "wide"]).catch(() => "");
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${pods}`);
  }
  await c.waitNodesReady();
  console.log(`# weft installed and nodes Ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const images = await c.images;
  const running = JSON.parse(await c.kubectl(["-n", "kube-system", "get", "pods", "-o", "json"])) as {
    items: Array<{
      metadata: { name: string };
      spec: { nodeName: string; containers: Array<{ image: string }> };
    }>;
  };
  const agents = running.items.filter((p) => p.metadata.name.startsWith("weft-agent-"));
  assert.deepEqual(agents.map((p) => p.spec.nodeName).sort(), [`${id}-node-1`, `${id}-node-2`]);
  for (const p of running.items.filter((x) => x.metadata.name.startsWith("weft-")))
    assert.equal(p.spec.containers[0]?.image, images.weft.ref);
});

test("the chart's NOTES command, weftctl node status inside an agent's pod, shows every node converged", async () => {
  const c = cluster!;
  const out = await c.kubectl([
    ...["-n", "kube-system", "exec", "ds/weft-agent", "-c", "agent", "--"],
    ...["node", "/app/dist/cli/main.js", "node", "status"],
  ]);
  for (const n of [`${id}-node-1`, `${id}-node-2`]) assert.match(out, new RegExp(`Node ${n}: Ready=True`));
});

test("pods started by the kubelets get addresses from Weft's pool and reach each other across nodes", async () => {
  const c = cluster!;
  pods = await deployWorkload(c, 4);
  assert.equal(new Set(pods.map((p) => p.node)).size, 2, "the workload is spread over both nodes");
  for (const p of pods)
    assert.match(p.ip, /^10\.244\./, `${p.name} got ${p.ip}, not an address of Weft's pool`);
  const result = await podMatrix(c, pods);
  console.log(formatConnectivity(result).replace(/^/gm, "# "));
  assert.equal(result.ok, result.total);
  assert.equal(result.total, 12);
});

test("every pod reaches the ClusterIP Service and resolves its name through cluster DNS", async () => {
  const c = cluster!;
  assert.ok(pods.length > 0, "no workload pods (the previous test failed)");
  const ip = await serviceIP(c);
  for (const p of pods) {
    assert.ok(await checkService(c, p, ip), `${p.name} (${p.node}) cannot reach Service ${ip}`);
    const dns = await checkDns(c, p, ip);
    assert.ok(dns.ok, `${p.name} (${p.node}) resolved the Service to '${dns.answer}', not ${ip}`);
  }
});

test("pod traffic to the hub (apiserver, CoreDNS) left through Weft's outgoing NAT: each node holds the inet weft table and no rule of its own for the hub", async () => {
  const c = cluster!;
  assert.equal(c.state.nodes.length, 2);
  for (const n of c.state.nodes) {
    const table = execFileSync("ip", ["netns", "exec", n.ns, "nft", "list", "table", "inet", "weft"], {
      encoding: "utf8",
    });
    assert.match(table, /10\.244\.0\.0\/16/, `${n.name}: the pool is not in Weft's NAT table`);
    assert.match(table, /masquerade/, `${n.name}: no masquerade rule in Weft's NAT table`);
    const iptables = execFileSync("ip", ["netns", "exec", n.ns, "iptables-save", "-t", "nat"], {
      encoding: "utf8",
    });
    // kube-proxy's own KUBE-POSTROUTING rule masquerades only what it marked; none names the hub
    assert.doesNotMatch(iptables, new RegExp(`-d ${HUB_IP}/32 .*-j MASQUERADE`), `${n.name}: a hub rule`);
  }
});

/**
 * The upstream specs CI runs: pod-to-pod across nodes and node-to-pod (http and udp), a Service's
 * endpoints, and cluster DNS for Services and for the cluster itself.
 */
export const CI_CONFORMANCE_SPECS = [
  "[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: http [NodeConformance] [Conformance]",
  "[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: udp [NodeConformance] [Conformance]",
  "[sig-network] Networking Granular Checks: Pods should function for node-pod communication: http [LinuxOnly] [NodeConformance] [Conformance]",
  "[sig-network] Networking Granular Checks: Pods should function for node-pod communication: udp [LinuxOnly] [NodeConformance] [Conformance]",
  "[sig-network] Services should serve a basic endpoint from pods [Conformance]",
  "[sig-network] DNS should provide DNS for services [Conformance]",
  "[sig-network] DNS should provide DNS for the cluster [Conformance]",
];

test("upstream [sig-network] Conformance specs pass: pod networking, Service endpoints, DNS", async () => {
  const c = cluster!;
  const result = await runE2E({
    kubeconfig: c.kubeconfig,
    focus: CI_CONFORMANCE_SPECS.map(specPattern),
    skip: [],
    parallel: 2,
    // kept after the run: the full log of a failed spec
    reportDir: join(repoRoot, ".weft", "e2e", id),
    nodes: 2,
    timeout: "30m",
  });
  console.log(summaryText(result.output).replace(/^/gm, "# "));
  const s = result.summary;
  assert.ok(s, `ginkgo printed no summary (exit ${result.exitCode}); see ${result.logFile}`);
  assert.deepEqual(s.failures, [], `see ${result.logFile}`);
  assert.equal(s.failed, 0);
  assert.equal(
    s.passed,
    CI_CONFORMANCE_SPECS.length,
    "every chosen spec ran (a renamed spec matches nothing)",
  );
  assert.equal(result.exitCode, 0);
});

test("teardown leaves nothing behind and the host sysctls as they were", async () => {
  const c = cluster!;
  cluster = undefined;
  await c.destroy();
  assert.deepEqual(await leftovers(id, c.state.dir), []);
  assert.deepEqual(readSysctls(), sysctlsBefore);
});
