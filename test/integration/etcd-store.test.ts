import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Etcd3 } from "etcd3";
import { API_VERSION, type BGPPeer } from "../../api/index.js";
import { EtcdStore } from "../../datastore/etcd.js";
import { createStore } from "../../datastore/factory.js";
import { InvalidError, type WatchEvent } from "../../datastore/store.js";
import { startTestEtcd } from "../../devenv/containers/etcd.js";
import type { EtcdServer } from "../../devenv/etcd.js";
import { waitFor } from "../../devenv/procs.js";
import { runStoreConformance } from "./store-conformance-support.js";

/** The Store contract on etcd: a TLS etcd of this file's own, with client certificates. */
let etcd: EtcdServer | undefined;
const stores: EtcdStore[] = [];
const started = startTestEtcd().then((e) => {
  etcd = e;
  return e;
});
const storeOf = async (prefix = `/weft-test-${process.pid}`) => {
  const e = await started;
  const s = new EtcdStore({ ...e.client, prefix }, { pageSize: 2 });
  stores.push(s);
  return s;
};

after(async () => {
  for (const s of stores) s.close();
  await (etcd ?? (await started.catch(() => undefined)))?.stop();
});

runStoreConformance("etcd", () => storeOf(), {
  expiredResourceVersion: async (store) => {
    const s = store as EtcdStore;
    const { resourceVersion } = await s.list("BGPPeer");
    const name = `expired-${process.pid}`;
    const p = await s.create("BGPPeer", peer(name));
    await s.delete("BGPPeer", p.metadata.name);
    await s.compact();
    return String(Number(resourceVersion) - 1);
  },
});

function peer(name: string, finalizers?: string[]): BGPPeer {
  return {
    apiVersion: API_VERSION,
    kind: "BGPPeer",
    metadata: { name, ...(finalizers ? { finalizers } : {}) },
    spec: { peerIP: "127.0.0.1", asNumber: 64512, node: "nowhere", port: 179 },
  };
}

describe("EtcdStore", () => {
  let store: EtcdStore;
  before(async () => {
    store = await storeOf(`/weft-sem-${process.pid}`);
  });

  it("keeps each object at <prefix>/<plural>/<name> as JSON; resourceVersion is the mod revision", async () => {
    const created = await store.create("BGPPeer", peer("layout"));
    const key = `/weft-sem-${process.pid}/bgppeers/layout`;
    const out = await etcd!.etcdctl(["get", key, "-w", "json"]);
    const kv = (JSON.parse(out) as { kvs: Array<{ value: string; mod_revision: number }> }).kvs[0]!;
    assert.equal(String(kv.mod_revision), created.metadata.resourceVersion);
    const stored = JSON.parse(Buffer.from(kv.value, "base64").toString()) as BGPPeer;
    assert.equal(stored.kind, "BGPPeer");
    assert.equal(stored.metadata.uid, created.metadata.uid);
    assert.equal(stored.metadata.resourceVersion, undefined, "the version is the revision, not stored");
    assert.deepEqual(stored.spec, created.spec);
  });

  it("create sets uid, creationTimestamp and generation 1 and drops status; spec changes bump generation", async () => {
    const p = peer("gen");
    p.status = { expectedSessions: 9 };
    const v1 = await store.create("BGPPeer", p);
    assert.match(v1.metadata.uid ?? "", /^[0-9a-f-]{36}$/);
    assert.match(v1.metadata.creationTimestamp ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(v1.metadata.generation, 1);
    assert.equal(v1.status, undefined);
    const v2 = await store.update("BGPPeer", { ...v1, metadata: { ...v1.metadata, labels: { a: "b" } } });
    assert.equal(v2.metadata.generation, 1, "metadata changes keep the generation");
    const v3 = await store.update("BGPPeer", { ...v2, spec: { ...v2.spec, port: 2 } });
    assert.equal(v3.metadata.generation, 2);
    const v4 = await store.updateStatus("BGPPeer", { ...v3, status: { expectedSessions: 1 } });
    assert.equal(v4.metadata.generation, 2, "status writes keep the generation");
    const v5 = await store.update("BGPPeer", { ...v4, metadata: { ...v4.metadata, uid: "forged" } });
    assert.equal(v5.metadata.uid, v1.metadata.uid, "uid is immutable");
    const same = await store.update("BGPPeer", v5);
    assert.equal(same.metadata.resourceVersion, v5.metadata.resourceVersion, "a no-op update writes nothing");
  });

  it("delete of an object with finalizers marks it; removing the last finalizer deletes it", async () => {
    const events: WatchEvent<BGPPeer>[] = [];
    const { resourceVersion } = await store.list("BGPPeer");
    const stop = store.watch("BGPPeer", resourceVersion, (ev) => {
      if ("object" in ev && ev.object.metadata.name === "fin") events.push(ev);
    });
    try {
      await store.create("BGPPeer", peer("fin", ["weft.dev/test"]));
      assert.equal(await store.delete("BGPPeer", "fin"), true);
      const marked = await store.get("BGPPeer", "fin");
      assert.ok(marked?.metadata.deletionTimestamp, "marked for deletion");
      assert.equal(marked.metadata.generation, 2);
      await assert.rejects(
        store.update("BGPPeer", {
          ...marked,
          metadata: { ...marked.metadata, finalizers: ["weft.dev/test", "weft.dev/other"] },
        }),
        (err: unknown) => err instanceof InvalidError && /finalizers/.test(err.message),
      );
      await store.mutate("BGPPeer", "fin", (o) => {
        o.metadata.finalizers = [];
        return o;
      });
      assert.equal(await store.get("BGPPeer", "fin"), undefined);
      await waitFor("events", () => (events.length >= 3 ? true : undefined), 10_000);
      assert.deepEqual(
        events.map((e) => e.type),
        ["ADDED", "MODIFIED", "DELETED"],
      );
    } finally {
      stop();
    }
  });

  it("refuses a name the apiserver would refuse, naming the field", async () => {
    await assert.rejects(store.create("BGPPeer", peer("Not_Valid")), (err: unknown) => {
      assert.ok(err instanceof InvalidError, String(err));
      assert.match(err.message, /metadata\.name/);
      return true;
    });
  });

  it("etcd refuses a client without a certificate", async () => {
    const e = await started;
    const bare = new Etcd3({
      hosts: e.client.endpoints,
      credentials: { rootCertificate: (await import("node:fs")).readFileSync(e.client.ca) },
      faultHandling: { global: undefined },
    });
    try {
      await assert.rejects(bare.get("/anything").string());
    } finally {
      bare.close();
    }
  });

  it("createStore('etcd') reads WEFT_ETCD_* and says what is missing", async () => {
    const e = await started;
    const saved = { ...process.env };
    try {
      for (const k of Object.keys(process.env)) if (k.startsWith("WEFT_ETCD_")) delete process.env[k];
      assert.throws(() => createStore("etcd", undefined as never), /WEFT_ETCD_ENDPOINTS/);
      Object.assign(process.env, e.env(`/weft-env-${process.pid}`));
      const s = createStore("etcd", undefined as never) as EtcdStore;
      stores.push(s);
      assert.equal(s.backend, "etcd");
      assert.equal(s.prefix, `/weft-env-${process.pid}`);
      await s.create("BGPPeer", peer("from-env"));
      assert.ok(await s.get("BGPPeer", "from-env"));
      process.env.WEFT_ETCD_CERT = e.client.cert;
      delete process.env.WEFT_ETCD_KEY;
      assert.throws(() => createStore("etcd", undefined as never), /WEFT_ETCD_KEY/);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});
