import { mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import type * as k8s from "@kubernetes/client-node";
import { ownBlocks } from "../api/index.js";
import { createStore, type Store } from "../datastore/index.js";
import { Assigner } from "../ipam/client/index.js";
import { createLogger, type Logger, loadKubeConfig, parseSelector } from "../lib/index.js";
import {
  EventRecorder,
  GracefulShutdown,
  HealthServer,
  InformerCache,
  Manager,
  type Runnable,
} from "../runtime/index.js";
import { BgpManager } from "./bgp/manager.js";
import { IpamAddressAssigner } from "./cni/ipam-assigner.js";
import { KubePodIpam } from "./cni/pod-ipam.js";
import { startCniServer } from "./cni/server.js";
import { KernelDataplane } from "./dataplane/kernel.js";
import { NatTable } from "./nat/table.js";
import { NodeAgent } from "./node-agent.js";

const HELP = `weft-agent: programs this node's kernel (VXLAN, host-gw routes, ARP, FDB) from RouteIntents.

  --node NAME                  this node (default: $NODE_NAME, else the hostname)
  --kubeconfig PATH            kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)
  --datastore kubernetes|etcd  where weft.dev objects live (default kubernetes; env WEFT_DATASTORE)
  --health-port N              /healthz, /readyz, /metrics (default 9872; 0 = any free port)
  --health-host ADDR           (default 0.0.0.0)
  --resync-ms N                full kernel resync period (default 60000)
  --cni-socket PATH            where weft-cni reaches this agent (default /var/run/weft/agent.sock; "" = off)
  --pod-mtu N                  MTU of new pod interfaces (default: derived from the underlay, minus VXLAN's 50 when
                               VXLAN is in use; followed when the underlay's MTU changes)
  --nat true|false             outgoing NAT of natOutgoing pools in the nftables table "inet weft" (default true)
  --node-selector SEL          apply only the RouteIntents of nodes with these labels (default all)
  --run-dir DIR                state of this agent; BIRD runs from DIR/bird (default /var/run/weft)
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      node: { type: "string", default: process.env.NODE_NAME ?? hostname() },
      kubeconfig: { type: "string" },
      datastore: { type: "string", default: process.env.WEFT_DATASTORE ?? "kubernetes" },
      "health-port": { type: "string", default: "9872" },
      "health-host": { type: "string", default: "0.0.0.0" },
      "resync-ms": { type: "string", default: "60000" },
      "cni-socket": { type: "string", default: "/var/run/weft/agent.sock" },
      "pod-mtu": { type: "string", default: "" },
      nat: { type: "string", default: "true" },
      "node-selector": { type: "string" },
      "run-dir": { type: "string", default: "/var/run/weft" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const node = values.node as string;
  const log = createLogger(`agent/${node}`);
  const kc = loadKubeConfig(values.kubeconfig);
  const store = createStore(values.datastore as string, kc, { fieldManager: "weft-agent" });
  const health = new HealthServer({
    port: Number(values["health-port"]),
    host: values["health-host"] as string,
  });
  const { url } = await health.start();
  log.info("weft-agent starting", { node, datastore: store.backend, health: url });

  const dataplane = new KernelDataplane({ resyncIntervalMs: Number(values["resync-ms"]), logger: log });
  // The same informers as the controller's, one per kind, shared by the dataplane, BGP and IPAM sides.
  // Of the blocks, only this node's own (the others' come as RouteIntents or over BGP): an agent's
  // memory and watch traffic do not grow with every block of the cluster.
  const cache = new InformerCache(store, kc, {
    nodeSelector: values["node-selector"],
    selections: { IPAMBlock: ownBlocks(node) },
  });
  // BGP (BIRD) starts only once a BGP pool or a BGPPeer exists; it adds to the agent's status.
  let bgp: BgpManager | undefined;
  const nat =
    values.nat === "false"
      ? undefined
      : new NatTable({ logger: log, onChange: () => void agent.writeStatus().catch(() => undefined) });
  const podMTU = Number(values["pod-mtu"]) || undefined;
  const agent: NodeAgent = new NodeAgent({
    node,
    store,
    cache,
    dataplane,
    logger: log,
    ...(nat ? { nat } : {}),
    ...(podMTU ? { podMTU } : {}),
    ...(values["node-selector"] ? { nodeSelector: parseSelector(values["node-selector"]) } : {}),
    decorateStatus: (s, gen) => bgp?.decorate(s, gen) ?? s,
  });
  bgp = new BgpManager({
    node,
    store,
    kc,
    cache,
    logger: log,
    runDir: values["run-dir"] as string,
    onStatusChange: () => void agent.writeStatus().catch(() => undefined),
  });
  health.addReadyCheck("dataplane", () => agent.ready || "first sync not done");

  // The agent's readiness is its first kernel sync (above), not the manager's cache check.
  const manager = new Manager({ logger: log }).addCache(cache).add(agent).add(bgp);
  const socketPath = values["cni-socket"] as string;
  if (socketPath) manager.add(cniServer(socketPath, node, store, kc, cache, () => agent.podMTU(), log));
  const shutdown = new GracefulShutdown({ logger: log }).install();
  // Entries stay in the kernel on shutdown: the dataplane must outlive its agent.
  shutdown.add("agent", () => manager.stop());
  shutdown.add("health", () => health.stop());
  await manager.start();
  log.info("weft-agent running");
}

/** The CNI server: pods' addresses from the IPAM client over the agent's caches. */
function cniServer(
  socketPath: string,
  node: string,
  store: Store,
  kc: k8s.KubeConfig,
  cache: InformerCache,
  defaultMtu: () => number | undefined,
  log: Logger,
): Runnable {
  let server: { close(): Promise<void> | void } | undefined;
  return {
    name: "cni-server",
    async start() {
      const ipam = new Assigner({
        store,
        kc,
        blocks: cache.kind("IPAMBlock"),
        pools: cache.kind("IPPool"),
        ownBlocksOnly: cache.partial("IPAMBlock"),
        reservations: cache.kind("IPReservation"),
      });
      await ipam.start();
      mkdirSync(dirname(socketPath), { recursive: true });
      const recorder = new EventRecorder(kc, { component: "weft-agent", instance: node });
      server = await startCniServer({
        socketPath,
        node,
        assigner: new IpamAddressAssigner(ipam),
        defaultMtu,
        log,
        // Pool choice and fixed addresses come from the pod's and its namespace's annotations.
        podIpam: new KubePodIpam(kc),
        events: {
          warn: (pod, reason, message) =>
            void recorder.warn(
              {
                apiVersion: "v1",
                kind: "Pod",
                name: pod.name,
                namespace: pod.namespace,
                ...(pod.uid ? { uid: pod.uid } : {}),
              },
              reason,
              message,
            ),
        },
      });
    },
    async stop() {
      await server?.close();
    },
  };
}

main().catch((err: unknown) => {
  createLogger("agent").error("fatal", {
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  process.exit(1);
});
