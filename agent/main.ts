import { mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { createStore } from "../datastore/index.js";
import { Assigner } from "../ipam/client/index.js";
import { createLogger, loadKubeConfig, parseSelector } from "../lib/index.js";
import { GracefulShutdown, HealthServer } from "../runtime/index.js";
import { BgpManager } from "./bgp/manager.js";
import { IpamAddressAssigner } from "./cni/ipam-assigner.js";
import { startCniServer } from "./cni/server.js";
import { KernelDataplane } from "./dataplane/kernel.js";
import { NodeAgent } from "./node-agent.js";

const HELP = `weft-agent: programs this node's kernel (VXLAN, host-gw routes, ARP, FDB) from RouteIntents.

  --node NAME                  this node (default: $NODE_NAME, else the hostname)
  --kubeconfig PATH            kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)
  --datastore kubernetes|etcd  where weft.dev objects live (default kubernetes; env WEFT_DATASTORE)
  --health-port N              /healthz, /readyz, /metrics (default 9872; 0 = any free port)
  --health-host ADDR           (default 0.0.0.0)
  --resync-ms N                full kernel resync period (default 60000)
  --cni-socket PATH            where weft-cni reaches this agent (default /var/run/weft/agent.sock; "" = off)
  --pod-mtu N                  MTU of pod interfaces (default 1450: a 1500 underlay minus VXLAN's 50)
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
      "pod-mtu": { type: "string", default: "1450" },
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
  // BGP (BIRD) starts only once a BGP pool or a BGPPeer exists; it adds to the agent's status.
  let bgp: BgpManager | undefined;
  const agent = new NodeAgent({
    node,
    store,
    dataplane,
    logger: log,
    ...(values["node-selector"] ? { nodeSelector: parseSelector(values["node-selector"]) } : {}),
    decorateStatus: (s, gen) => bgp?.decorate(s, gen) ?? s,
  });
  bgp = new BgpManager({
    node,
    ...(values["node-selector"] ? { nodeSelector: values["node-selector"] } : {}),
    store,
    kc,
    logger: log,
    runDir: values["run-dir"] as string,
    pools: agent.pools,
    blocks: agent.blocks,
    onStatusChange: () => void agent.writeStatus().catch(() => undefined),
  });
  health.addReadyCheck("dataplane", () => agent.ready || "first sync not done");

  const shutdown = new GracefulShutdown({ logger: log }).install();
  // Entries stay in the kernel on shutdown: the dataplane must outlive its agent.
  shutdown.add("agent", () => agent.stop());
  shutdown.add("bgp", () => bgp.stop());
  shutdown.add("health", () => health.stop());
  await agent.start();
  await bgp.start();
  const socketPath = values["cni-socket"] as string;
  if (socketPath) {
    const ipam = new Assigner({ store, kc, blocks: agent.blocks, pools: agent.pools });
    await ipam.start();
    mkdirSync(dirname(socketPath), { recursive: true });
    const cni = await startCniServer({
      socketPath,
      node,
      assigner: new IpamAddressAssigner(ipam),
      defaultMtu: Number(values["pod-mtu"]),
      log,
    });
    shutdown.add("cni server", () => cni.close());
  }
  log.info("weft-agent running");
}

main().catch((err: unknown) => {
  createLogger("agent").error("fatal", {
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  process.exit(1);
});
