import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { API_VERSION, type BGPPeer } from "../../api/index.js";
import { KubernetesStore } from "../../datastore/kubernetes.js";
import type { WatchHandler } from "../../datastore/store.js";
import { testCluster } from "../../devenv/cluster.js";
import { waitFor } from "../../devenv/procs.js";
import { Controller } from "../../runtime/controller.js";
import { Informer, objectKey } from "../../runtime/informer.js";
import { coreListWatch, type ListWatch, type MetaObject, storeListWatch } from "../../runtime/listwatch.js";

/**
 * Wraps a real ListWatch so the test can break the connection under the informer (as a reset
 * would) or make its next watch start from a version the apiserver has long forgotten, which the
 * apiserver answers with 410 Gone.
 */
function faulty<T extends MetaObject>(inner: ListWatch<T>) {
  let current: { stop: () => void; handler: WatchHandler<T> } | undefined;
  let expireNext = false;
  const lw: ListWatch<T> = {
    description: inner.description,
    list: () => inner.list(),
    watch(rv, handler) {
      const from = expireNext ? "1" : rv;
      expireNext = false;
      const stop = inner.watch(from, handler);
      current = { stop, handler };
      return stop;
    },
  };
  return {
    lw,
    /** Ends the current watch as a dropped connection would. */
    breakWatch() {
      const c = current;
      current = undefined;
      c?.stop();
      c?.handler({ type: "CLOSED", error: new Error("connection reset by test") });
    },
    expireNextWatch() {
      expireNext = true;
    },
  };
}

describe("informer against the apiserver", () => {
  const cluster = testCluster();
  const store = new KubernetesStore(cluster.kc);
  const core = cluster.kc.makeApiClient(k8s.CoreV1Api);
  const prefix = `rt-${process.pid}-${randomBytes(3).toString("hex")}`;
  const informers: Array<Informer<MetaObject>> = [];
  let n = 0;
  const peer = (port = 179): BGPPeer => ({
    apiVersion: API_VERSION,
    kind: "BGPPeer",
    metadata: { name: `${prefix}-${n++}`, labels: { "weft.dev/test": prefix } },
    spec: { peerIP: "127.0.0.1", asNumber: 64512, node: `${prefix}-nonexistent`, port },
  });
  const ours = (o: MetaObject) => Boolean(o.metadata?.name?.startsWith(`${prefix}-`));

  after(async () => {
    await Promise.all(informers.map((i) => i.stop()));
    const { items } = await store.list("BGPPeer");
    await Promise.all(items.filter(ours).map((o) => store.delete("BGPPeer", o.metadata.name)));
    await core
      .deleteCollectionNamespacedPod({ namespace: "default", labelSelector: `weft.dev/test=${prefix}` })
      .catch(() => {});
  });

  function track<T extends MetaObject>(inf: Informer<T>) {
    const log: string[] = [];
    inf.on({
      add: (o) => ours(o) && log.push(`add ${o.metadata?.name}`),
      update: (a, b) =>
        ours(b) &&
        a.metadata?.resourceVersion !== b.metadata?.resourceVersion &&
        log.push(`update ${b.metadata?.name}`),
      delete: (o) => ours(o) && log.push(`delete ${o.metadata?.name}`),
    });
    informers.push(inf as unknown as Informer<MetaObject>);
    return log;
  }

  it("follows a Store kind: adds, updates and deletes reach the handlers and the cache", async () => {
    const existing = await store.create("BGPPeer", peer(1));
    const inf = new Informer(storeListWatch(store, "BGPPeer"));
    const log = track(inf);
    inf.start();
    await inf.waitForSync();
    assert.ok(inf.get(existing.metadata.name), "the initial list fills the cache");
    const b = await store.create("BGPPeer", peer(2));
    await store.update("BGPPeer", { ...b, spec: { ...b.spec, port: 3 } });
    await store.delete("BGPPeer", existing.metadata.name);
    const want = [
      `add ${existing.metadata.name}`,
      `add ${b.metadata.name}`,
      `update ${b.metadata.name}`,
      `delete ${existing.metadata.name}`,
    ];
    await waitFor("four events", () => (log.length >= 4 ? true : undefined), 20_000);
    assert.deepEqual(log, want);
    assert.equal((inf.get(b.metadata.name) as BGPPeer | undefined)?.spec.port, 3);
    assert.equal(inf.get(existing.metadata.name), undefined);
    // the cache keeps no managedFields (from the list nor from the watch); the apiserver still has them
    for (const o of inf.list()) assert.equal("managedFields" in o.metadata, false, o.metadata.name);
    const cached = inf.get(b.metadata.name) as BGPPeer;
    await store.update("BGPPeer", { ...cached, spec: { ...cached.spec, port: 4 } });
    const stored = JSON.parse(
      await cluster.kubectl(["get", "bgppeer", b.metadata.name, "-o", "json", "--show-managed-fields"]),
    ) as { metadata: { managedFields?: unknown[] } };
    assert.ok((stored.metadata.managedFields?.length ?? 0) > 0, "an update from a cached copy keeps them");
    await inf.stop();
  });

  it("recovers from a watch broken under it and from 410 Gone, ending with exactly the apiserver's objects", async () => {
    const f = faulty(storeListWatch(store, "BGPPeer"));
    const inf = new Informer(f.lw, { backoffInitialMs: 50, backoffMaxMs: 500 });
    const log = track(inf);
    const a = await store.create("BGPPeer", peer(10));
    const gone = await store.create("BGPPeer", peer(11));
    inf.start();
    await inf.waitForSync();

    // 1. The connection drops; changes made meanwhile arrive once the watch resumes.
    f.breakWatch();
    const c = await store.create("BGPPeer", peer(12));
    await waitFor(
      "the watch to resume and deliver",
      () => (inf.get(c.metadata.name) ? true : undefined),
      20_000,
    );
    assert.equal(inf.stats.lists, 1, "a broken watch resumes without a relist");

    // 2. The next watch starts from a version the apiserver no longer has: 410, relist.
    f.expireNextWatch();
    f.breakWatch();
    const d = await store.create("BGPPeer", peer(13));
    await store.delete("BGPPeer", gone.metadata.name);
    await store.mutate("BGPPeer", a.metadata.name, (o) => {
      o.spec.port = 20;
      return o;
    });
    await waitFor(
      "the relist",
      () => (inf.stats.expired >= 1 && inf.stats.lists >= 2 ? true : undefined),
      20_000,
    );
    await waitFor("the cache to converge", async () => {
      const truth = (await store.list("BGPPeer")).items.filter(ours);
      const cached = inf.list().filter(ours);
      const same =
        truth.length === cached.length &&
        truth.every(
          (o) => inf.get(o.metadata.name)?.metadata?.resourceVersion === o.metadata.resourceVersion,
        );
      return same ? true : undefined;
    });
    assert.ok(log.includes(`delete ${gone.metadata.name}`), `delete seen: ${log.join(", ")}`);
    assert.ok(log.includes(`add ${d.metadata.name}`));
    assert.equal((inf.get(a.metadata.name) as BGPPeer | undefined)?.spec.port, 20);

    // 3. And it keeps following after all that.
    const e = await store.create("BGPPeer", peer(14));
    await waitFor("an event after recovery", () =>
      log.includes(`add ${e.metadata.name}`) ? true : undefined,
    );
    await inf.stop();
  });

  it("follows a core kind (Pods) through the same runtime, with plain JSON objects from list and watch", async () => {
    const labels = { "weft.dev/test": prefix };
    const podBody = (name: string): k8s.V1Pod => ({
      metadata: { name, namespace: "default", labels },
      spec: { containers: [{ name: "c", image: "registry.invalid/none:0" }] },
    });
    const first = `${prefix}-pod-a`;
    await core.createNamespacedPod({ namespace: "default", body: podBody(first) });
    const inf = new Informer<k8s.V1Pod>(
      coreListWatch(cluster.kc, "Pod", { namespace: "default", labelSelector: `weft.dev/test=${prefix}` }),
    );
    const log = track(inf);
    // A reconciler fed by the informer, as a controller wires it.
    const reconciled = new Set<string>();
    const ctl = new Controller("test-pods", {
      async reconcile(key) {
        reconciled.add(key);
      },
    });
    inf.on({ add: (o) => ctl.enqueue(objectKey(o)), update: (_, o) => ctl.enqueue(objectKey(o)) });
    ctl.start();
    inf.start();
    await inf.waitForSync();
    const listed = inf.get(`default/${first}`);
    assert.ok(listed, "keyed namespace/name");
    assert.equal(typeof listed.metadata?.creationTimestamp, "string", "list items are plain JSON");

    const second = `${prefix}-pod-b`;
    await core.createNamespacedPod({ namespace: "default", body: podBody(second) });
    await core.patchNamespacedPod(
      {
        name: second,
        namespace: "default",
        body: [{ op: "add", path: "/metadata/annotations", value: { "weft.dev/x": "1" } }],
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch),
    );
    await core.deleteNamespacedPod({ name: first, namespace: "default", gracePeriodSeconds: 0 });
    await waitFor("pod events", () => (log.includes(`delete ${first}`) ? true : undefined), 20_000);
    // Deleting a pod may first mark it (deletionTimestamp: an update of pod a), then remove it.
    assert.deepEqual(
      log.filter((l) => l !== `update ${first}`),
      [`add ${first}`, `add ${second}`, `update ${second}`, `delete ${first}`],
    );
    const watched = inf.get(`default/${second}`);
    assert.equal(typeof watched?.metadata?.creationTimestamp, "string", "watch objects are plain JSON too");
    assert.equal(watched?.metadata?.annotations?.["weft.dev/x"], "1");
    assert.equal(watched?.metadata?.managedFields, undefined, "no managedFields in the cache");
    assert.equal(inf.get(`default/${first}`)?.metadata?.managedFields, undefined);
    await waitFor("both pods reconciled", () => (reconciled.has(`default/${second}`) ? true : undefined));
    assert.ok(reconciled.has(`default/${first}`));
    await inf.stop();
    await ctl.stop();
  });

  it("lists Nodes through the same ListWatch abstraction", async () => {
    const inf = new Informer<k8s.V1Node>(coreListWatch(cluster.kc, "Node"));
    informers.push(inf as unknown as Informer<MetaObject>);
    inf.start();
    await inf.waitForSync();
    // Other test files may add nodes meanwhile: the cache must converge on the apiserver's list.
    await waitFor("the Node cache to match the apiserver", async () => {
      const nodes = await core.listNode();
      const want = nodes.items.map((x) => x.metadata?.name ?? "").sort();
      return JSON.stringify(inf.keys().sort()) === JSON.stringify(want) ? true : undefined;
    });
    await inf.stop();
  });
});
