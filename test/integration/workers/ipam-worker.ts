/**
 * One allocator process of the IPAM concurrency and chaos tests: `count` assignments spread over
 * `nodes`, `inflight` at a time, through the real Assigner against the real apiserver. Every
 * address it holds is appended to `out` as one JSON line the moment assign() returns, so a test
 * that SIGKILLs it knows exactly what it held. With `namespace`, each handle's pod is created first
 * (as the kubelet does before CNI ADD).
 */
import { appendFileSync } from "node:fs";
import https from "node:https";
import * as k8s from "@kubernetes/client-node";
import { createStore } from "../../../datastore/factory.js";
import { Assigner } from "../../../ipam/client/assigner.js";
import type { Held, WorkerArgs } from "../ipam-support.js";

/**
 * client-node 1.3 builds a new https.Agent for every request, so every API call pays a TLS
 * handshake (~10x the request itself on these machines). Eight such processes saturate two cores
 * with handshakes; one shared keep-alive agent keeps the test about IPAM, not TLS.
 */
function keepAlive(kc: k8s.KubeConfig): void {
  let agent: https.Agent | undefined;
  const patched = kc as unknown as {
    createAgent: (cluster: unknown, opts: https.AgentOptions) => https.Agent;
  };
  patched.createAgent = (_cluster, opts) => {
    agent ??= new https.Agent({ ...opts, keepAlive: true, maxSockets: 64 });
    return agent;
  };
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? "{}") as WorkerArgs;
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(args.kubeconfig);
  keepAlive(kc);
  const store = createStore(undefined, kc); // WEFT_DATASTORE, inherited from the test
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const assigner = new Assigner({ store, kc, poolFilter: (n) => n === args.pool });
  await assigner.start();
  let next = 0;
  const one = async (i: number) => {
    const pod = `w${args.id}-${i}`;
    // Handles are unique like sandbox ids: the pool name makes them unique per test run.
    const handle = `${args.pool}-${pod}.eth0`;
    const node = args.nodes[(i * 7 + args.id) % args.nodes.length]!;
    if (args.namespace) {
      await core.createNamespacedPod({
        namespace: args.namespace,
        body: {
          metadata: { name: pod, labels: { "weft.dev/test-worker": String(args.id) } },
          spec: { nodeName: node, containers: [{ name: "c", image: "registry.invalid/pause" }] },
        },
      });
    }
    // As the kubelet retries a failed CNI ADD: same handle, so a retry can never take a second address.
    let a: Awaited<ReturnType<Assigner["assign"]>> | undefined;
    for (let attempt = 1; !a; attempt++) {
      try {
        a = await assigner.assign({ node, handle, family: 4, namespace: args.namespace ?? "none", pod });
      } catch (err) {
        if (attempt >= 5) throw err;
        process.stderr.write(
          `worker ${args.id}: assign ${handle} failed (attempt ${attempt}): ${String(err)}\n`,
        );
      }
    }
    const held: Held = { handle, ip: a.ips[0]!, node, block: a.addresses[0]!.block };
    appendFileSync(args.out, `${JSON.stringify(held)}\n`);
  };
  const lanes = Array.from({ length: args.inflight }, async () => {
    for (;;) {
      const i = next++;
      if (i >= args.count) return;
      await one(i);
    }
  });
  await Promise.all(lanes);
  process.stderr.write(`worker ${args.id}: ${JSON.stringify(assigner.stats)}\n`);
  await assigner.stop();
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
