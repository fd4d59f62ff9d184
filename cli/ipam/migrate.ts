import { parseArgs } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { kubeList, type Store } from "../../datastore/index.js";
import { errorMessage, sleep } from "../../lib/index.js";
import { type Command, UsageError } from "../command.js";
import { table } from "../table.js";
import { type Holder, type MigrationPlan, planMigration } from "./migrate-plan.js";

const isStatus = (err: unknown, code: number) => err instanceof k8s.ApiException && err.code === code;

async function snapshot(kc: k8s.KubeConfig, store: Store) {
  const [pools, blocks, pods, namespaces, nodes] = await Promise.all([
    store.list("IPPool"),
    store.list("IPAMBlock"),
    kubeList<k8s.V1Pod>(kc, "/api/v1/pods"),
    kubeList<k8s.V1Namespace>(kc, "/api/v1/namespaces"),
    kubeList<k8s.V1Node>(kc, "/api/v1/nodes"),
  ]);
  return {
    pools: pools.items,
    blocks: blocks.items,
    pods: pods.items,
    namespaces: namespaces.items,
    nodes: nodes.items,
  };
}

function report(plan: MigrationPlan, from: string, out: (t: string) => void): void {
  for (const e of plan.errors) out(`error: ${e}`);
  for (const w of plan.warnings) out(`warning: ${w}`);
  if (plan.holders.length === 0) out(`no pod holds an address of pool ${from}`);
  else
    out(
      table(
        ["POD", "NODE", "ADDRESS", "OWNER", "RESTART"],
        plan.holders.map((h) => [
          `${h.namespace}/${h.pod}`,
          h.node,
          h.ip,
          h.owner ?? "-",
          h.skip ? `no: ${h.skip}` : "yes",
        ]),
      ),
    );
  if (plan.vteps.length)
    out(
      `${plan.vteps.length} VTEP address(es) of nodes live in ${from}'s blocks (${plan.vteps.map((v) => v.node).join(", ")}); ` +
        `they move to another VXLAN pool when ${from} is deleted`,
    );
  if (plan.orphans.length)
    out(
      `${plan.orphans.length} address(es) of ${from} belong to pods that are gone; the garbage collector frees them`,
    );
}

/**
 * Waits until the pod object with this uid is gone (deleted, or replaced by a new pod of the same
 * name), and then until its controller has all its replicas ready again.
 */
async function waitRestarted(
  core: k8s.CoreV1Api,
  apps: k8s.AppsV1Api,
  h: Holder,
  deadline: number,
): Promise<string | undefined> {
  for (;;) {
    if (Date.now() > deadline) return `${h.namespace}/${h.pod} was not gone in time`;
    try {
      const p = await core.readNamespacedPod({ namespace: h.namespace, name: h.pod });
      if (p.metadata?.uid !== h.uid) break;
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
      break;
    }
    await sleep(500);
  }
  const [kind, name] = (h.owner ?? "").split("/");
  if (!kind || !name) return undefined;
  for (;;) {
    if (Date.now() > deadline) return `${kind} ${h.namespace}/${name} was not ready again in time`;
    let ready = true;
    try {
      if (kind === "ReplicaSet") {
        const rs = await apps.readNamespacedReplicaSet({ namespace: h.namespace, name });
        ready = (rs.status?.readyReplicas ?? 0) >= (rs.spec?.replicas ?? 1);
      } else if (kind === "StatefulSet") {
        const ss = await apps.readNamespacedStatefulSet({ namespace: h.namespace, name });
        ready = (ss.status?.readyReplicas ?? 0) >= (ss.spec?.replicas ?? 1);
      } else if (kind === "DaemonSet") {
        const ds = await apps.readNamespacedDaemonSet({ namespace: h.namespace, name });
        ready = (ds.status?.numberReady ?? 0) >= (ds.status?.desiredNumberScheduled ?? 0);
      }
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
    if (ready) return undefined;
    await sleep(1000);
  }
}

/** Evicts one pod through the Eviction API; a PodDisruptionBudget that says no (429) is waited out. */
async function evict(
  core: k8s.CoreV1Api,
  h: Holder,
  deadline: number,
  log: (t: string) => void,
): Promise<void> {
  let told = false;
  for (;;) {
    try {
      await core.createNamespacedPodEviction({
        name: h.pod,
        namespace: h.namespace,
        body: {
          apiVersion: "policy/v1",
          kind: "Eviction",
          metadata: { name: h.pod, namespace: h.namespace },
          deleteOptions: h.uid ? { preconditions: { uid: h.uid } } : {},
        },
      });
      return;
    } catch (err) {
      if (isStatus(err, 404) || isStatus(err, 409)) return; // gone, or already replaced
      if (!isStatus(err, 429)) throw err;
      if (!told) log(`${h.namespace}/${h.pod}: a PodDisruptionBudget does not allow it yet; waiting`);
      told = true;
      if (Date.now() > deadline)
        throw new Error(`${h.namespace}/${h.pod}: its PodDisruptionBudget never allowed the eviction`);
      await sleep(2000);
    }
  }
}

/**
 * `weftctl ipam migrate`: Calico's migrate-pools for Weft. Lists the pods that hold addresses of
 * pool A; with --restart evicts them (the Eviction API, so PodDisruptionBudgets are honoured), at
 * most --max-unavailable at a time, each slot waiting until the pod is gone and its controller is
 * whole again, so they come back with addresses of B. docs/ipam.md has the whole procedure.
 */
export const ipamMigrate: Command = {
  path: ["ipam", "migrate"],
  summary: "move pods from one pool to another: list who holds pool A's addresses, --restart them into B",
  usage:
    "weftctl ipam migrate --from A --to B [--node NODE] [--restart] [--include-unowned] [--max-unavailable N] [--timeout SECONDS] [-o text|json]",
  async run(ctx, args) {
    const { values } = parseArgs({
      args,
      options: {
        from: { type: "string" },
        to: { type: "string" },
        node: { type: "string" },
        restart: { type: "boolean" },
        "include-unowned": { type: "boolean" },
        "max-unavailable": { type: "string", default: "1" },
        timeout: { type: "string", default: "1800" },
        output: { type: "string", short: "o", default: "text" },
      },
    });
    if (!values.from || !values.to) throw new UsageError("--from and --to are required");
    const maxUnavailable = Number(values["max-unavailable"]);
    if (!Number.isInteger(maxUnavailable) || maxUnavailable < 1)
      throw new UsageError("--max-unavailable must be a whole number >= 1");
    const timeoutS = Number(values.timeout);
    if (!(timeoutS > 0)) throw new UsageError("--timeout must be a positive number of seconds");
    const kc = ctx.kc();
    const input = {
      from: values.from,
      to: values.to,
      ...(values.node ? { node: values.node } : {}),
      includeUnowned: values["include-unowned"] ?? false,
    };
    const plan = planMigration({ ...input, ...(await snapshot(kc, ctx.store())) });
    if (values.output === "json" && !values.restart) {
      ctx.out(JSON.stringify(plan, null, 2));
      return plan.errors.length ? 1 : 0;
    }
    report(plan, values.from, ctx.out);
    if (!values.restart) return plan.errors.length ? 1 : 0;
    if (plan.errors.length) {
      ctx.err("nothing restarted: fix the errors above first");
      return 1;
    }
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const deadline = Date.now() + timeoutS * 1000;
    const todo = plan.holders.filter((h) => !h.skip);
    const failures: string[] = [];
    let next = 0;
    // Each slot restarts one pod at a time: evict, wait until it is gone and its owner whole.
    await Promise.all(
      Array.from({ length: Math.min(maxUnavailable, todo.length) }, async () => {
        for (;;) {
          const h = todo[next++];
          if (!h) return;
          try {
            ctx.out(`restarting ${h.namespace}/${h.pod} (${h.ip} on ${h.node})`);
            await evict(core, h, deadline, ctx.out);
            const late = await waitRestarted(core, apps, h, deadline);
            if (late) failures.push(late);
          } catch (err) {
            failures.push(`${h.namespace}/${h.pod}: ${errorMessage(err)}`);
          }
        }
      }),
    );
    const after = planMigration({ ...input, ...(await snapshot(kc, ctx.store())) });
    const left = after.holders.length;
    for (const f of failures) ctx.err(`error: ${f}`);
    ctx.out(
      left === 0
        ? `done: no pod holds an address of pool ${values.from}` +
            (after.vteps.length
              ? `; ${after.vteps.length} VTEP address(es) remain and move when the pool is deleted (kubectl delete ippool ${values.from})`
              : `; delete it with kubectl delete ippool ${values.from}`)
        : `${left} pod(s) still hold addresses of pool ${values.from}:`,
    );
    if (left > 0) report({ ...after, errors: [], warnings: [] }, values.from, ctx.out);
    return failures.length || left > 0 ? 1 : 0;
  },
};
