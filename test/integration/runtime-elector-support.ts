/**
 * One leader-election replica for runtime-leader.test.ts, run as its own process so the test can
 * SIGKILL it. It appends its view to a shared log: `start|tick|stop <identity> <epoch ms>`; ticks
 * are written only while it believes it leads, which is what "two replicas never both act" is
 * checked against.
 *
 * usage: node runtime-elector.js KUBECONFIG NAMESPACE LEASE IDENTITY LOGFILE LEASE_MS RENEW_MS RETRY_MS
 */
import { appendFileSync } from "node:fs";
import * as k8s from "@kubernetes/client-node";
import { LeaderElector } from "../../runtime/leaderelection.js";
import { GracefulShutdown } from "../../runtime/shutdown.js";

const [kubeconfig, namespace, name, identity, logFile, leaseMs, renewMs, retryMs] = process.argv.slice(2);
if (!retryMs) {
  console.error(
    "usage: runtime-elector KUBECONFIG NAMESPACE LEASE IDENTITY LOGFILE LEASE_MS RENEW_MS RETRY_MS",
  );
  process.exit(2);
}
const note = (what: string) => appendFileSync(logFile!, `${what} ${identity} ${Date.now()}\n`);
const kc = new k8s.KubeConfig();
kc.loadFromFile(kubeconfig!);

let ticker: NodeJS.Timeout | undefined;
const elector = new LeaderElector(kc, {
  namespace: namespace!,
  name: name!,
  identity: identity!,
  leaseDurationMs: Number(leaseMs),
  renewDeadlineMs: Number(renewMs),
  retryPeriodMs: Number(retryMs),
  onStartedLeading: (signal) => {
    note("start");
    ticker = setInterval(() => {
      // The check a controller makes before acting.
      if (!signal.aborted && elector.isLeader()) note("tick");
    }, 50);
  },
  onStoppedLeading: () => {
    clearInterval(ticker);
    note("stop");
  },
});

const shutdown = new GracefulShutdown({ timeoutMs: 10_000 })
  .add("leader lease", () => elector.stop())
  .install();
note("candidate");
await elector.run();
if (!shutdown.signal.aborted) {
  // Lost (not stopped): a controller exits and lets its Deployment restart it clean.
  note("exit");
  process.exit(3);
}
