import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { DEFAULT_NAMESPACE } from "../api/index.js";
import { createStore, DEFAULT_FLANNEL_PREFIX, EtcdStore, flannelOwnerKey } from "../datastore/index.js";
import { createLogger, loadKubeConfig, matchesSelector, ownNamespace, parseSelector } from "../lib/index.js";
import { GracefulShutdown, HealthServer, InformerCache, Manager } from "../runtime/index.js";
import { bgpStatusController } from "./bgp/reconciler.js";
import { type ControllerContext, controllerInformers, nodeExistsFn } from "./context.js";
import { FlannelLeases } from "./flannel/leases.js";
import { ipamControllers } from "./ipam/index.js";
import { routeIntentController } from "./routeintent/reconciler.js";

const HELP = `weft-controller: allocates blocks to nodes, publishes RouteIntents, garbage-collects addresses.

  --kubeconfig PATH            kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)
  --datastore kubernetes|etcd  where weft.dev objects live (default kubernetes; env WEFT_DATASTORE)
  --health-port N              /healthz, /readyz, /metrics (default 9871; 0 = any free port)
  --health-host ADDR           (default 0.0.0.0)
  --leader-elect true|false    (default true)
  --leader-elect-namespace NS  namespace of the Lease (default $POD_NAMESPACE, else ${DEFAULT_NAMESPACE})
  --lease-duration-ms N        (default 15000)
  --gc-grace-ms N              an address is released only if seen leaked twice this far apart (default 60000)
  --identity ID                leader-election identity (default hostname_pid)
  --node-selector SEL          manage only nodes with these labels (kubectl syntax; default all)
  --pool-selector SEL          manage only IPPools with these labels (default all)
  --lease-name NAME            Lease used for leader election (default weft-controller)
  etcd datastore: WEFT_ETCD_ENDPOINTS, WEFT_ETCD_CA, WEFT_ETCD_CERT, WEFT_ETCD_KEY, WEFT_ETCD_PREFIX
  --flannel-leases true|false  mirror the NodeSubnet pool as Flannel leases in etcd (default true)
  --flannel-prefix PREFIX      Flannel's etcd prefix (default /coreos.com/network; env WEFT_FLANNEL_PREFIX)
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: "string" },
      datastore: { type: "string", default: process.env.WEFT_DATASTORE ?? "kubernetes" },
      "health-port": { type: "string", default: "9871" },
      "health-host": { type: "string", default: "0.0.0.0" },
      "leader-elect": { type: "string", default: "true" },
      "leader-elect-namespace": { type: "string", default: ownNamespace() },
      "lease-duration-ms": { type: "string", default: "15000" },
      "gc-grace-ms": { type: "string", default: "60000" },
      identity: { type: "string", default: `${hostname()}_${process.pid}` },
      "node-selector": { type: "string" },
      "pool-selector": { type: "string" },
      "lease-name": { type: "string", default: "weft-controller" },
      "flannel-leases": { type: "string", default: "true" },
      "flannel-prefix": { type: "string", default: process.env.WEFT_FLANNEL_PREFIX },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const log = createLogger("controller");
  const kc = loadKubeConfig(values.kubeconfig);
  const store = createStore(values.datastore as string, kc, { fieldManager: "weft-controller" });
  const health = new HealthServer({
    port: Number(values["health-port"]),
    host: values["health-host"] as string,
  });
  const { url } = await health.start();
  log.info("weft-controller starting", { identity: values.identity, datastore: store.backend, health: url });

  const cache = new InformerCache(store, kc, { nodeSelector: values["node-selector"] });
  const informers = controllerInformers(cache);
  const ctx: ControllerContext = { store, kc, informers, nodeExists: nodeExistsFn(kc) };
  const poolSelector = values["pool-selector"] ? parseSelector(values["pool-selector"]) : undefined;
  const poolFilter = poolSelector
    ? (name: string) => matchesSelector(poolSelector, informers.pools.get(name)?.metadata.labels)
    : undefined;
  const leaseMs = Number(values["lease-duration-ms"]);
  const shutdown = new GracefulShutdown({ logger: log }).install();
  const manager = new Manager({
    logger: log,
    health,
    ...(values["leader-elect"] === "false"
      ? {}
      : {
          leaderElection: {
            kc,
            namespace: values["leader-elect-namespace"] as string,
            name: values["lease-name"] as string,
            identity: values.identity as string,
            leaseDurationMs: leaseMs,
            renewDeadlineMs: Math.floor(leaseMs * (2 / 3)),
            retryPeriodMs: Math.max(200, Math.floor(leaseMs / 7)),
          },
        }),
  });
  // Caches and every part run on the leader only (a standby replica only waits for the lease).
  manager.addCache(cache);
  // First: the IPAM node reconciler and the RouteIntents ask it from their first reconcile on.
  if (store instanceof EtcdStore && values["flannel-leases"] !== "false") {
    const prefix = (values["flannel-prefix"] as string | undefined) ?? DEFAULT_FLANNEL_PREFIX;
    const flannel = new FlannelLeases(store.client, ctx, {
      prefix,
      ownerKey: flannelOwnerKey(store.prefix, prefix),
    });
    ctx.flannel = flannel;
    manager.add(flannel);
  }
  const ipamOptions = { gcGraceMs: Number(values["gc-grace-ms"]), ...(poolFilter ? { poolFilter } : {}) };
  for (const part of ipamControllers(ctx, ipamOptions)) manager.add(part);
  manager.add(routeIntentController(ctx));
  // scoped to a node shard, it reports only on BGP objects labelled like that shard
  const nodeSelector = values["node-selector"] ? parseSelector(values["node-selector"]) : undefined;
  manager.add(bgpStatusController(ctx, nodeSelector ? { selector: nodeSelector } : {}));
  shutdown.add("controllers", () => manager.stop());
  await manager.start();
}

main().catch((err: unknown) => {
  createLogger("controller").error("fatal", {
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  process.exit(1);
});
