/**
 * Node join benchmark, on a control plane of its own (stopped at the end): weft-controller
 * (dist/controllers/main.js) runs against a VXLAN pool; 1,000 Nodes are created at a steady rate,
 * and for each the time from its create returning to a RouteIntent with the route to its block
 * arriving on a watch is recorded (what every other agent needs to reach the node's pods). The
 * controller's own write counter gives the API writes per join. No peer: the target is absolute
 * (O(1) writes per join, p99 < 1 s on the local apiserver).
 *
 * Flags: --nodes N (1000), --rate N nodes per second (50).
 * Last line of output: one JSON object with the results.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { ANNOTATIONS, API_VERSION } from "../../api/index.js";
import { KubernetesStore } from "../../datastore/index.js";
import { sleep, startControlPlane, stopControlPlane, stopPid } from "../../devenv/index.js";
import { withConnectionReuse } from "../../lib/index.js";
import { spawnController } from "../controller.js";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "1000" },
    rate: { type: "string", default: "50" },
  },
});

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function metrics(base: string): Promise<string> {
  try {
    return await (await fetch(`${base}/metrics`)).text();
  } catch {
    return "";
  }
}

/** weft_datastore_writes_total by kind/verb, from the controller's /metrics. */
function writesByKindVerb(body: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of body.split("\n")) {
    const m = /^weft_datastore_writes_total\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const kind = /kind="([^"]*)"/.exec(m[1]!)?.[1];
    const verb = /verb="([^"]*)"/.exec(m[1]!)?.[1];
    out[`${kind} ${verb}`] = (out[`${kind} ${verb}`] ?? 0) + Number(m[2]);
  }
  return out;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

async function main(): Promise<void> {
  const nodes = Number(values.nodes);
  const rate = Number(values.rate);
  const cp = await startControlPlane({ ownerPid: process.pid });
  const kc = withConnectionReuse(new k8s.KubeConfig());
  kc.loadFromFile(cp.kubeconfig);
  const store = new KubernetesStore(kc);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  let controller: number | undefined;
  try {
    await store.create("IPPool", {
      apiVersion: API_VERSION,
      kind: "IPPool",
      metadata: { name: "bench-join" },
      spec: { cidr: "10.128.0.0/12", encapsulation: "VXLAN" },
    });
    const { child, base } = await spawnController(cp.kubeconfig, join(cp.dir, "controller.log"));
    controller = child.pid;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`weft-controller exited with ${child.exitCode}`);
      if ((await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200) break;
      await sleep(100);
    }
    await sleep(2000); // the pool's finalizer and status settle before counting
    const before = writesByKindVerb(await metrics(base));

    const created = new Map<string, number>();
    const latency = new Map<string, number>();
    const seen = new Map<string, number>();
    // visible = an intent that routes to the node's block (with its VTEP neighbor and FDB entry)
    const stop = store.watch("RouteIntent", undefined, (e) => {
      if (e.type !== "ADDED" && e.type !== "MODIFIED") return;
      if (e.object.spec.routes.length === 0) return;
      const name = e.object.metadata.name;
      const t = performance.now();
      const c = created.get(name);
      if (c === undefined) {
        if (!seen.has(name)) seen.set(name, t);
      } else if (!latency.has(name)) latency.set(name, t - c);
    });
    await sleep(500);
    const t0 = performance.now();
    const creates: Promise<void>[] = [];
    for (let i = 0; i < nodes; i++) {
      // a steady stream: node i is sent at t0 + i/rate
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const name = `join-${i}`;
      creates.push(
        core
          .createNode({
            body: {
              metadata: {
                name,
                annotations: { [ANNOTATIONS.underlayIP]: `192.0.${(i >> 8) & 255}.${i & 255}` },
              },
            },
          })
          .then(() => {
            const c = performance.now();
            created.set(name, c);
            // the intent may have arrived before the create's response did
            const s = seen.get(name);
            if (s !== undefined) latency.set(name, Math.max(0, s - c));
          }),
      );
    }
    await Promise.all(creates);
    const deadline = performance.now() + 120_000;
    while (latency.size < nodes && performance.now() < deadline) await sleep(100);
    stop();
    await sleep(2000); // the statuses that follow each intent
    const after = writesByKindVerb(await metrics(base));
    const delta: Record<string, number> = {};
    for (const k of Object.keys(after)) {
      const d = after[k]! - (before[k] ?? 0);
      if (d > 0) delta[k] = d;
    }
    const ms = [...latency.values()];
    const result = {
      bench: "join",
      nodes,
      ratePerSecond: rate,
      joined: ms.length,
      p50Ms: Math.round(percentile(ms, 50)),
      p99Ms: Math.round(percentile(ms, 99)),
      maxMs: Math.round(Math.max(...ms)),
      writesPerJoin: Math.round((sum(delta) / nodes) * 100) / 100,
      writes: delta,
      targetP99Ms: 1000,
    };
    console.log(
      `# ${ms.length}/${nodes} nodes joined at ${rate}/s: node create -> RouteIntent on a watch ` +
        `p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms; ${result.writesPerJoin} writes per join`,
    );
    console.log(`# writes by kind and verb: ${JSON.stringify(delta)}`);
    console.log(JSON.stringify(result));
  } finally {
    if (controller) await stopPid(controller, 10_000);
    await stopControlPlane(cp);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
