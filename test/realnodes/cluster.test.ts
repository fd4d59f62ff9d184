import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { AGNHOST_IMAGE } from "../../devenv/images/recipes.js";
import { RealCluster, reapRealClusters } from "../../devenv/realnodes/cluster.js";
import { leftovers, readSysctls } from "./leftovers.js";

/**
 * Real nodes without Weft: two kubelets with containerd and kube-proxy in network namespaces,
 * Debian's reference bridge plugin as their CNI. They turn Ready, run pods, the apiserver reaches
 * them (exec goes through its egress proxy), and teardown leaves the machine as it was.
 */
const id = `rn${process.pid.toString(36)}`;
const sysctlsBefore = readSysctls();
let cluster: RealCluster | undefined;

before(async () => {
  const reaped = await reapRealClusters();
  if (reaped) console.log(`# reaped ${reaped} real-node cluster(s) left by an earlier run`);
  cluster = await RealCluster.start({ id, nodes: 2, referenceCni: true, ownerPid: process.pid });
  console.log(`# real-node cluster: ${JSON.stringify(cluster.timings)}`);
  console.log(`# node daemons' memory (MiB): ${JSON.stringify(cluster.nodeMemory())}`);
});

after(async () => {
  await cluster?.destroy();
});

test("both nodes register and turn Ready", async () => {
  const c = cluster!;
  const out = await c.kubectl([
    "get",
    "nodes",
    "-o",
    'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
  ]);
  assert.deepEqual(out.trim().split("\n").sort(), [`${id}-node-1=True`, `${id}-node-2=True`]);
});

test("a pod on each node runs, and kubectl exec reaches both kubelets", async () => {
  const c = cluster!;
  await c.kubectl([
    "create",
    "deployment",
    "hello",
    `--image=${AGNHOST_IMAGE}`,
    "--replicas=2",
    "--",
    "/agnhost",
    "pause",
  ]);
  await c.kubectl(["rollout", "status", "deployment/hello", "--timeout=120s"]);
  const pods = (
    await c.kubectl(["get", "pods", "-l", "app=hello", "-o", "jsonpath={.items[*].metadata.name}"])
  )
    .trim()
    .split(" ");
  const nodes = new Set<string>();
  for (const pod of pods) {
    nodes.add((await c.kubectl(["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"])).trim());
    assert.equal((await c.kubectl(["exec", pod, "--", "hostname"])).trim(), pod);
  }
  assert.equal(pods.length, 2);
  // the scheduler spreads a Deployment's replicas over nodes by default
  assert.equal(nodes.size, 2, `both replicas on one node: ${[...nodes].join(",")}`);
});

test("teardown leaves no namespace, mount, cgroup or process, and the host sysctls as they were", async () => {
  const c = cluster!;
  cluster = undefined;
  await c.destroy();
  assert.deepEqual(await leftovers(id, c.state.dir), []);
  assert.deepEqual(readSysctls(), sysctlsBefore);
});
