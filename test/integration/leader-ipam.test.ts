import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { alive, type Started, stopPid, waitFor } from "../../devenv/procs.js";
import { vtepHandle } from "../../ipam/index.js";
import { deleteNode, removePools, setup, spawnController } from "./ipam-support.js";

/**
 * Two weft-controller processes share one Lease: only the holder acts (claims blocks for joining
 * nodes); when it is SIGKILLed the other takes over within the lease duration and carries on.
 */
// Long enough that a loaded 2-core machine does not make the leader miss its renewals.
const LEASE_MS = 6000;

const { cluster, kc, store, core } = setup();
const tag = `leader${process.pid}`;
const label = { "weft.dev/test": tag };
const pool = `${tag}-pool`;
const lease = `${tag}-lease`;
const nodes: string[] = [];
const dir = mkdtempSync(join(tmpdir(), `${tag}-`));
const procs: Array<Started & { id: string }> = [];
const coord = kc.makeApiClient(k8s.CoordinationV1Api);

function startController(id: string): Started & { id: string } {
  const p = spawnController(cluster.kubeconfig, tag, join(dir, `${id}.log`), [
    "--leader-elect-namespace",
    "kube-system",
    "--lease-name",
    lease,
    "--lease-duration-ms",
    String(LEASE_MS),
    "--identity",
    id,
    "--gc-grace-ms",
    "600000",
  ]);
  const started = { ...p, id };
  procs.push(started);
  return started;
}

async function holder(): Promise<string | undefined> {
  try {
    const l = await coord.readNamespacedLease({ name: lease, namespace: "kube-system" });
    return l.spec?.holderIdentity || undefined;
  } catch {
    return undefined;
  }
}

async function joinNode(name: string): Promise<void> {
  nodes.push(name);
  await core.createNode({ body: { metadata: { name, labels: label } } });
  await waitFor(
    `blocks and VTEP of ${name}`,
    async () => {
      const bs = (await store.list("IPAMBlock")).items.filter((b) => b.spec.affinity === name);
      return bs.some((b) => b.spec.allocations.some((a) => a.handle === vtepHandle(name))) ? bs : undefined;
    },
    LEASE_MS * 10,
  );
}

const log = (p: { logFile: string }) => readFileSync(p.logFile, "utf8");

after(async () => {
  for (const p of procs) await stopPid(p.pid, 3000);
  await Promise.all(nodes.map((n) => deleteNode(core, n)));
  for (const n of nodes) await store.delete("RouteIntent", n).catch(() => false);
  await removePools(store, [pool]);
  await coord.deleteNamespacedLease({ name: lease, namespace: "kube-system" }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

it("two controllers: one acts, a SIGKILLed leader is replaced and the other carries on", async () => {
  await store.create("IPPool", {
    apiVersion: "weft.dev/v1alpha1",
    kind: "IPPool",
    metadata: { name: pool, labels: label },
    spec: { cidr: "10.204.0.0/16" },
  });
  const a = startController(`a-${process.pid}`);
  const b = startController(`b-${process.pid}`);
  const byId = (id: string | undefined) => [a, b].find((p) => p.id === id);
  // Acting: logged that its controllers run and still alive (a replica that loses the lease exits).
  const acting = () => [a, b].filter((p) => alive(p.pid) && /controllers running/.test(log(p)));

  const first = await waitFor("a leader", async () => byId(await holder()), LEASE_MS * 10);
  await waitFor(
    "the leader running its controllers",
    () => (acting().length > 0 ? true : undefined),
    LEASE_MS * 10,
  );
  await joinNode(`${tag}-n1`);
  assert.equal(acting().length, 1, "exactly one replica acts");
  assert.ok(first);

  const leader = byId(await holder())!;
  const follower = leader === a ? b : a;
  assert.ok(alive(follower.pid), "the follower waits for the lease");
  assert.doesNotMatch(log(follower), /claimed block/, "the follower claimed nothing");
  process.kill(leader.pid, "SIGKILL");
  await waitFor("leader gone", () => (alive(leader.pid) ? undefined : true));
  await waitFor(
    "the follower takes the lease and runs",
    async () => ((await holder()) === follower.id && acting()[0] === follower ? true : undefined),
    LEASE_MS * 5,
  );
  await joinNode(`${tag}-n2`);
  // The block is visible to the API before the controller's create returns and it logs the claim.
  const claimedN2 = new RegExp(`claimed block at node join node=${tag}-n2`);
  const logged = await waitFor(
    "the new leader logging its claim",
    () => (claimedN2.test(log(follower)) ? true : undefined),
    10_000,
  ).catch(() => false);
  assert.ok(logged, `the new leader does the work; its log:\n${log(follower)}`);
  const blocks = (await store.list("IPAMBlock")).items.filter((x) => x.spec.pool === pool);
  assert.equal(blocks.length, 2, "one block per node, no double claims");
});
