import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { PAUSE_IMAGE } from "../../devenv/images/recipes.js";
import { waitFor } from "../../devenv/procs.js";
import { RealCluster, reapRealClusters } from "../../devenv/realnodes/cluster.js";
import { deployWorkload, installWeft, WORKLOAD, type WorkloadPod } from "../../devenv/realnodes/workload.js";
import { repoRoot } from "../../devenv/tools.js";
import { parseCidr, parseIP } from "../../net/index.js";

/**
 * Pool migration as docs/ipam.md describes it, on three real kubelets with Weft installed by its
 * chart: a Deployment's pods hold addresses of the chart's pool `default`; pool B is created, the
 * old pool disabled, and `weftctl ipam migrate --from default --to B --restart` evicts the pods
 * (a PodDisruptionBudget allows one at a time) until every replacement runs with an address of B.
 * On the same kubelets a pod's fixed address (weft.dev/ip-addresses) and a refused pool choice
 * (weft.dev/ipv4pools naming a missing pool: the agent's Event on the pod). Then the old pool is
 * deleted and its finalizer lets it go once its last address is free.
 */
const id = `rm${process.pid.toString(36)}`;
const FROM = "default";
const TO = "migrated";
const TO_CIDR = "10.248.0.0/16";
const REPLICAS = 6;
let cluster: RealCluster | undefined;
let original: WorkloadPod[] = [];

function inCidr(ip: string, cidr: string): boolean {
  const a = parseIP(ip);
  const c = parseCidr(cidr);
  const bits = (c.family === 4 ? 32 : 128) - c.prefix;
  return a.family === c.family && a.value >> BigInt(bits) === c.base >> BigInt(bits);
}

async function weftctl(args: string[]): Promise<{ code: number; out: string }> {
  const cli = join(repoRoot, "dist", "cli", "main.js");
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [cli, "--kubeconfig", cluster!.kubeconfig, ...args],
      { maxBuffer: 16 << 20 },
    );
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === "number" ? e.code : 1,
      out: `${e.stdout ?? ""}${e.stderr ?? e.message}`,
    };
  }
}

interface Block {
  spec: {
    pool: string;
    cidr: string;
    allocations: Array<{ handle: string; pod?: string; namespace?: string }>;
  };
}

async function blocks(): Promise<Block[]> {
  return (JSON.parse(await cluster!.kubectl(["get", "ipamblocks", "-o", "json"])) as { items: Block[] })
    .items;
}

before(async () => {
  const reaped = await reapRealClusters();
  if (reaped) console.log(`# reaped ${reaped} real-node cluster(s) left by an earlier run`);
  cluster = await RealCluster.start({ id, nodes: 3, ownerPid: process.pid });
  console.log(`# real-node cluster: ${JSON.stringify(cluster.timings)}`);
  await installWeft(cluster, "vxlan");
  await cluster.waitNodesReady();
});

after(async () => {
  await cluster?.destroy();
});

test("a Deployment on three nodes takes its addresses from the chart's pool", async () => {
  original = await deployWorkload(cluster!, REPLICAS);
  assert.equal(new Set(original.map((p) => p.node)).size, 3, "the pods are spread over the three nodes");
  for (const p of original) assert.ok(inCidr(p.ip, "10.244.0.0/16"), `${p.name} has ${p.ip}`);
});

test("weftctl ipam migrate lists the holders, refuses while the old pool is enabled, and --restart moves every pod to B", async () => {
  const c = cluster!;
  await c.kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "weft.dev/v1alpha1",
      kind: "IPPool",
      metadata: { name: TO },
      spec: { cidr: TO_CIDR, encapsulation: "VXLAN" },
    }),
  );
  await c.kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: { name: WORKLOAD.name, namespace: WORKLOAD.namespace },
      spec: { maxUnavailable: 1, selector: { matchLabels: { app: WORKLOAD.name } } },
    }),
  );
  const listed = await weftctl(["ipam", "migrate", "--from", FROM, "--to", TO]);
  for (const p of original)
    assert.match(
      listed.out,
      new RegExp(`${WORKLOAD.namespace}/${p.name} +${p.node} +${p.ip.replaceAll(".", "\\.")}`),
    );
  const early = await weftctl(["ipam", "migrate", "--from", FROM, "--to", TO, "--restart"]);
  assert.notEqual(early.code, 0, "a restart while the old pool still hands out addresses is refused");
  assert.match(early.out, /nothing restarted/);
  await c.kubectl(["patch", "ippool", FROM, "--type=merge", "-p", '{"spec":{"disabled":true}}']);
  const run = await weftctl([
    ...["ipam", "migrate", "--from", FROM, "--to", TO, "--restart", "--max-unavailable", "2"],
    ...["--timeout", "600"],
  ]);
  console.log(run.out.replace(/^/gm, "# "));
  assert.equal(run.code, 0, run.out);
  assert.match(run.out, new RegExp(`done: no pod holds an address of pool ${FROM}`));
  for (const p of original) assert.match(run.out, new RegExp(`restarting ${WORKLOAD.namespace}/${p.name} `));
  const now = await deployWorkload(c, REPLICAS, 180_000);
  const ips = now.map((p) => p.ip);
  assert.equal(new Set(ips).size, REPLICAS, `no address twice: ${ips.join(" ")}`);
  for (const p of now) assert.ok(inCidr(p.ip, TO_CIDR), `${p.name} on ${p.node} has ${p.ip}, not from ${TO}`);
  // The IPAM agrees with the pods: B's blocks hold exactly their addresses, A's no pod's.
  const all = await blocks();
  const podHandles = (pool: string) =>
    all
      .filter((b) => b.spec.pool === pool)
      .flatMap((b) => b.spec.allocations)
      .filter((a) => a.pod?.startsWith(`${WORKLOAD.name}-`));
  assert.deepEqual(podHandles(FROM), [], "no workload pod holds an address of the old pool");
  assert.deepEqual(
    podHandles(TO)
      .map((a) => a.pod)
      .sort(),
    now.map((p) => p.name).sort(),
  );
});

test("on real kubelets a pod with weft.dev/ip-addresses starts with that address, and one naming a missing pool does not start: its Event names the pool", async () => {
  const c = cluster!;
  const pod = (name: string, annotations: Record<string, string>) =>
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: WORKLOAD.namespace, annotations },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: "pause", image: PAUSE_IMAGE, imagePullPolicy: "Never" }],
      },
    });
  await c.kubectl(["apply", "-f", "-"], pod("fixed", { "weft.dev/ip-addresses": '["10.248.77.7"]' }));
  await c.kubectl(["apply", "-f", "-"], pod("nopool", { "weft.dev/ipv4pools": '["no-such-pool"]' }));
  await c.kubectl([
    ...["-n", WORKLOAD.namespace, "wait", "--for=condition=Ready", "pod/fixed", "--timeout=120s"],
  ]);
  const ip = (
    await c.kubectl(["-n", WORKLOAD.namespace, "get", "pod", "fixed", "-o", "jsonpath={.status.podIP}"])
  ).trim();
  assert.equal(ip, "10.248.77.7");
  const event = await waitFor(
    "the agent's Warning Event on the pod naming the pool",
    async () => {
      const list = JSON.parse(
        await c.kubectl([
          ...["-n", WORKLOAD.namespace, "get", "events", "-o", "json"],
          "--field-selector=involvedObject.name=nopool",
        ]),
      ) as { items: Array<{ reason: string; message: string; type: string }> };
      return list.items.find((e) => e.reason === "IPPoolNotUsable");
    },
    120_000,
    1000,
  );
  assert.equal(event.type, "Warning");
  assert.match(
    event.message,
    /weft\.dev\/ipv4pools of pod default\/nopool: pool no-such-pool does not exist/,
  );
  const nopoolIP = (
    await c.kubectl(["-n", WORKLOAD.namespace, "get", "pod", "nopool", "-o", "jsonpath={.status.podIP}"])
  ).trim();
  assert.equal(nopoolIP, "", "the pod has no address");
  await c.kubectl(["-n", WORKLOAD.namespace, "delete", "pod", "fixed", "nopool", "--wait=false"]);
});

test("the old pool, deleted, is released by its finalizer once its last address is free", async () => {
  const c = cluster!;
  await c.kubectl(["delete", "ippool", FROM, "--wait=true", "--timeout=180s"]);
  const pools = JSON.parse(await c.kubectl(["get", "ippools", "-o", "json"])) as {
    items: Array<{ metadata: { name: string } }>;
  };
  assert.deepEqual(
    pools.items.map((p) => p.metadata.name),
    [TO],
  );
  assert.deepEqual(
    (await blocks()).filter((b) => b.spec.pool === FROM),
    [],
    "no block of the old pool is left",
  );
});
