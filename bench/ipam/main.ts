/**
 * IPAM benchmark, on a control plane of its own (startControlPlane; stopped at the end):
 *
 * 1. burst: 100 concurrent assignments on one node through the Assigner; API writes per address
 *    (datastore write counter) and time until all are done. Peer: Calico documents 2 writes per
 *    address (handle + block), so the ratio is ours / 2.
 *    annotated: the same burst through the agent's own path for pods that carry IPAM annotations:
 *    each pod read by KubePodIpam (its namespace names one pool, half of the pods name another
 *    themselves, a tenth ask for a fixed address of a third), then assigned by IpamAddressAssigner;
 *    Weft's writes per address again (pod and namespace reads are not writes).
 * 2. scale: 5,000 nodes and 150,000 addresses (5,000 blocks of 30 allocations, VTEP included),
 *    created directly in the apiserver; weft-controller (dist/controllers/main.js) is started,
 *    stopped and started again: RSS and time until it has reconciled every node, block status and
 *    RouteIntent with empty queues.
 *
 * Flags: --nodes N (5000), --per-node N (30), --burst N (100), --rounds N (3), --skip-scale.
 * Last line of output: one JSON object with the results.
 */
import { readFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { IpamAddressAssigner, KubePodIpam } from "../../agent/index.js";
import { ANNOTATIONS, API_VERSION, blockName, type IPAMBlockSpec } from "../../api/index.js";
import { KubernetesStore, writesTotal } from "../../datastore/index.js";
import { sleep, startControlPlane, stopControlPlane, stopPid } from "../../devenv/index.js";
import { Assigner } from "../../ipam/client/index.js";
import { blockCidrAt, parsePool, vtepHandle as vtepOf } from "../../ipam/index.js";
import { spawnController } from "../controller.js";
import { type Headline, loadAverage } from "../proc.js";

const CALICO_WRITES_PER_ADDRESS = 2;

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "5000" },
    "per-node": { type: "string", default: "30" },
    burst: { type: "string", default: "100" },
    rounds: { type: "string", default: "3" },
    "skip-scale": { type: "boolean" },
  },
});

async function totalWrites(): Promise<number> {
  return (await writesTotal.get()).values.reduce((s, v) => s + v.value, 0);
}

/** Runs `fn` over items with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      for (;;) {
        const i = next++;
        if (i >= items.length) return;
        await fn(items[i]!);
      }
    }),
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function burst(kc: k8s.KubeConfig, store: KubernetesStore, n: number, rounds: number) {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await store.create("IPPool", {
    apiVersion: API_VERSION,
    kind: "IPPool",
    metadata: { name: "bench-burst" },
    spec: { cidr: "10.240.0.0/16" },
  });
  const assigner = new Assigner({ store, kc, poolFilter: (p) => p === "bench-burst" });
  await assigner.start();
  const results: Array<{ ms: number; writes: number }> = [];
  for (let r = 0; r < rounds; r++) {
    const node = `burst-${r}`;
    await core.createNode({ body: { metadata: { name: node } } });
    const w0 = await totalWrites();
    const t0 = performance.now();
    const got = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        assigner.assign({ node, handle: `burst-${r}-${i}.eth0`, namespace: "bench", pod: `p${r}-${i}` }),
      ),
    );
    const ms = performance.now() - t0;
    const writes = (await totalWrites()) - w0;
    if (new Set(got.map((g) => g.ips[0])).size !== n) throw new Error("duplicate addresses in the burst");
    results.push({ ms, writes });
    console.log(`# burst round ${r}: ${n} addresses in ${ms.toFixed(0)} ms, ${writes} writes`);
  }
  await assigner.stop();
  const writesPerAddress = median(results.map((x) => x.writes)) / n;
  return {
    addresses: n,
    rounds,
    msMedian: Math.round(median(results.map((x) => x.ms))),
    writesPerAddress,
    calicoWritesPerAddress: CALICO_WRITES_PER_ADDRESS,
    ratioVsCalico: writesPerAddress / CALICO_WRITES_PER_ADDRESS,
  };
}

/**
 * The burst with annotations in use, through the agent's path (read the pod and its namespace,
 * then assign): pools chosen by the namespace, by the pod, and fixed addresses.
 */
async function annotatedBurst(kc: k8s.KubeConfig, store: KubernetesStore, n: number, rounds: number) {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const pools = { ns: "bench-ann-ns", pod: "bench-ann-pod", fixed: "bench-ann-fixed" };
  const cidrs = { ns: "10.241.0.0/16", pod: "10.242.0.0/16", fixed: "10.243.0.0/16" };
  for (const k of ["ns", "pod", "fixed"] as const)
    await store.create("IPPool", {
      apiVersion: API_VERSION,
      kind: "IPPool",
      metadata: { name: pools[k] },
      spec: { cidr: cidrs[k] },
    });
  const mine = new Set(Object.values(pools));
  const assigner = new Assigner({ store, kc, poolFilter: (p) => mine.has(p) });
  await assigner.start();
  const agent = new IpamAddressAssigner(assigner);
  const reader = new KubePodIpam(kc);
  const results: Array<{ ms: number; writes: number }> = [];
  const kinds = { namespace: 0, pod: 0, fixed: 0 };
  for (let r = 0; r < rounds; r++) {
    const node = `annotated-${r}`;
    const ns = `bench-ann-${r}`;
    await core.createNode({ body: { metadata: { name: node } } });
    await core.createNamespace({
      body: { metadata: { name: ns, annotations: { [ANNOTATIONS.ipv4Pools]: JSON.stringify([pools.ns]) } } },
    });
    const annotationsOf = (i: number): Record<string, string> =>
      i % 10 === 0
        ? { [ANNOTATIONS.ipAddresses]: JSON.stringify([`10.243.${r}.${10 + i / 10}`]) }
        : i % 2 === 1
          ? { [ANNOTATIONS.ipv4Pools]: JSON.stringify([pools.pod]) }
          : {};
    await pool(
      Array.from({ length: n }, (_, i) => i),
      32,
      (i) =>
        core.createNamespacedPod({
          namespace: ns,
          body: {
            metadata: { name: `p${i}`, annotations: annotationsOf(i) },
            spec: { nodeName: node, containers: [{ name: "c", image: "registry.invalid/pause" }] },
          },
        }),
    );
    const w0 = await totalWrites();
    const t0 = performance.now();
    const got = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const asked = await reader.lookup(ns, `p${i}`);
        return agent.assign({
          node,
          handle: `ann-${r}-${i}.eth0`,
          namespace: ns,
          pod: `p${i}`,
          families: ["ipv4"],
          ...(asked ? { ipam: asked.request } : {}),
        });
      }),
    );
    const ms = performance.now() - t0;
    const writes = (await totalWrites()) - w0;
    const ips = got.map((g) => g.ips[0]!);
    if (new Set(ips).size !== n) throw new Error("duplicate addresses in the annotated burst");
    for (const [i, ip] of ips.entries()) {
      const want = i % 10 === 0 ? `10.243.${r}.${10 + i / 10}` : undefined;
      const prefix = i % 10 === 0 ? "10.243." : i % 2 === 1 ? "10.242." : "10.241.";
      if (want ? ip !== want : !ip.startsWith(prefix))
        throw new Error(`pod p${i} got ${ip}, not what its annotations ask for (${want ?? prefix})`);
    }
    if (r === 0)
      for (let i = 0; i < n; i++) kinds[i % 10 === 0 ? "fixed" : i % 2 === 1 ? "pod" : "namespace"]++;
    results.push({ ms, writes });
    console.log(`# annotated round ${r}: ${n} addresses in ${ms.toFixed(0)} ms, ${writes} writes`);
  }
  await assigner.stop();
  const writesPerAddress = median(results.map((x) => x.writes)) / n;
  return {
    addresses: n,
    rounds,
    podsPerRound: kinds,
    msMedian: Math.round(median(results.map((x) => x.ms))),
    writesPerAddress,
    target: 0.05,
  };
}

/** Setup only: one keep-alive agent (client-node 1.3 makes a new TLS connection per request). */
function keepAliveCopy(kc: k8s.KubeConfig): k8s.KubeConfig {
  const copy = new k8s.KubeConfig();
  copy.loadFromString(kc.exportConfig());
  let agent: https.Agent | undefined;
  const patched = copy as unknown as { createAgent: (c: unknown, o: https.AgentOptions) => https.Agent };
  patched.createAgent = (_c, o) => {
    agent ??= new https.Agent({ ...o, keepAlive: true, maxSockets: 64 });
    return agent;
  };
  return copy;
}

async function populate(base: k8s.KubeConfig, nodes: number, perNode: number) {
  const kc = keepAliveCopy(base);
  const store = new KubernetesStore(kc);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const spec = { cidr: "10.128.0.0/12" };
  await store.create("IPPool", {
    apiVersion: API_VERSION,
    kind: "IPPool",
    metadata: { name: "bench-scale" },
    spec,
  });
  const p = parsePool({ name: "bench-scale", spec });
  const names = Array.from({ length: nodes }, (_, i) => `scale-${i}`);
  const t0 = performance.now();
  await pool(names, 48, async (name) => {
    const i = Number(name.slice(6));
    await core.createNode({
      body: {
        metadata: { name, annotations: { [ANNOTATIONS.underlayIP]: `192.0.${(i >> 8) & 255}.${i & 255}` } },
      },
    });
    const cidr = blockCidrAt(p, BigInt(i));
    const allocations = Array.from({ length: perNode }, (_, j) =>
      j === 0
        ? { ordinal: 0, handle: vtepOf(name), sequence: 1 }
        : {
            ordinal: j,
            handle: `scale-${i}-${j}.eth0`,
            namespace: "bench",
            pod: `p-${i}-${j}`,
            sequence: j + 1,
          },
    );
    const block: IPAMBlockSpec = {
      cidr,
      pool: "bench-scale",
      affinity: name,
      allocations,
      sequence: perNode,
    };
    await store.create("IPAMBlock", {
      apiVersion: API_VERSION,
      kind: "IPAMBlock",
      metadata: { name: blockName(cidr) },
      spec: block,
    });
  });
  return Math.round(performance.now() - t0);
}

async function get(url: string): Promise<{ status: number; body: string }> {
  try {
    const r = await fetch(url);
    return { status: r.status, body: await r.text() };
  } catch {
    return { status: 0, body: "" };
  }
}

function metric(body: string, name: string, labels: string): number {
  let sum = 0;
  for (const line of body.split("\n")) {
    if (line.startsWith(`${name}{`) && line.includes(labels)) sum += Number(line.split(" ").pop());
  }
  return sum;
}

function rssMB(pid: number, field = "VmRSS"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

/** Where the controller's memory is, in MB, from its own /metrics (V8 heap spaces, external buffers). */
function memoryBreakdown(body: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of body.split("\n")) {
    const space = /^nodejs_heap_space_size_used_bytes\{space="([^"]+)"\} (\S+)/.exec(line);
    if (space) out[`heap ${space[1]}`] = Math.round(Number(space[2]) / 2 ** 20);
    const ext = /^nodejs_external_memory_bytes (\S+)/.exec(line);
    if (ext) out.external = Math.round(Number(ext[1]) / 2 ** 20);
    const total = /^nodejs_heap_size_used_bytes (\S+)/.exec(line);
    if (total) out["heap used"] = Math.round(Number(total[1]) / 2 ** 20);
  }
  return out;
}

/**
 * Starts weft-controller; resolves when every node, block and RouteIntent was reconciled at least
 * once and the queues are empty.
 */
async function runController(kubeconfig: string, nodes: number, logFile: string) {
  const t0 = performance.now();
  const { child, base } = await spawnController(kubeconfig, logFile, ["--gc-grace-ms", "3600000"]);
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`weft-controller exited with ${child.exitCode}; see ${logFile}`);
    const ready = await get(`${base}/readyz`);
    if (ready.status === 200) {
      const m = (await get(`${base}/metrics`)).body;
      // every node planned, every block's status and every RouteIntent (spec + status) applied
      const reconciled = Math.min(
        ...["ipam-node", "ipam-block-status", "routeintent"].map((c) =>
          metric(m, "weft_reconcile_total", `controller="${c}"`),
        ),
      );
      const depth = metric(m, "weft_workqueue_depth", "queue=");
      if (reconciled >= nodes && depth === 0) break;
    }
    await sleep(100);
  }
  const ms = Math.round(performance.now() - t0);
  await sleep(2000); // settle: pool status, RouteIntents
  return {
    child,
    ms,
    rssMB: rssMB(child.pid!),
    peakRssMB: rssMB(child.pid!, "VmHWM"),
    memory: memoryBreakdown((await get(`${base}/metrics`)).body),
  };
}

async function main(): Promise<void> {
  const cp = await startControlPlane({ ownerPid: process.pid });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  const store = new KubernetesStore(kc);
  const result: Record<string, unknown> = { bench: "ipam" };
  try {
    result.burst = await burst(kc, store, Number(values.burst), Number(values.rounds));
    result.annotated = await annotatedBurst(kc, store, Number(values.burst), Number(values.rounds));
    if (!values["skip-scale"]) {
      const nodes = Number(values.nodes);
      const perNode = Number(values["per-node"]);
      const populateMs = await populate(kc, nodes, perNode);
      console.log(`# created ${nodes} nodes and ${nodes * perNode} addresses in ${populateMs} ms`);
      const log = join(cp.dir, "controller.log");
      const first = await runController(cp.kubeconfig, nodes, log);
      console.log(`# first start converged in ${first.ms} ms, RSS ${first.rssMB} MB`);
      await stopPid(first.child.pid!, 10_000);
      const second = await runController(cp.kubeconfig, nodes, log);
      console.log(`# restart converged in ${second.ms} ms, RSS ${second.rssMB} MB`);
      console.log(`# controller memory after the restart (MB): ${JSON.stringify(second.memory)}`);
      const used = (await store.get("IPPool", "bench-scale"))?.status?.addresses?.used;
      await stopPid(second.child.pid!, 10_000);
      result.scale = {
        loadavg: loadAverage(),
        nodes,
        addresses: nodes * perNode,
        populateMs,
        firstStartConvergeMs: first.ms,
        restartConvergeMs: second.ms,
        rssMB: second.rssMB,
        peakRssMB: Math.max(first.peakRssMB, second.peakRssMB),
        rssTargetMB: 500,
        restartTargetMs: 30_000,
        poolStatusAddressesUsed: used,
        memoryMB: second.memory,
      };
    }
  } finally {
    await stopControlPlane(cp);
  }
  const b = result.burst as Awaited<ReturnType<typeof burst>>;
  const headline: Headline = {
    metric: `API writes per pod address, ${b.addresses} concurrent assignments on one node (median of ${b.rounds} rounds)`,
    value: b.writesPerAddress,
    target: 0.05,
    unit: "writes/address",
    peer: `Calico: ${CALICO_WRITES_PER_ADDRESS} writes per address (handle + block, documented)`,
  };
  result.headline = headline;
  result.loadavgAfter = loadAverage();
  const sc = result.scale as { peakRssMB: number; restartConvergeMs: number; nodes: number } | undefined;
  console.log(
    `headline: ${b.writesPerAddress} writes per address (target <= 0.05; Calico ${CALICO_WRITES_PER_ADDRESS}): ` +
      `${b.writesPerAddress <= 0.05 ? "meets" : "MISSES"} the target` +
      (sc
        ? `; controller at ${sc.nodes} nodes: peak RSS ${sc.peakRssMB} MB (target < 500), restart converged in ${sc.restartConvergeMs} ms (target < 30000)`
        : ""),
  );
  console.log(
    "timed span: burst, from the first assign() call until all are resolved (every block write acknowledged); " +
      "scale, from spawning weft-controller until every node, block status and RouteIntent was reconciled and its queues are empty.",
  );
  console.log(JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
