import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  apiTimestamp,
  decodeObject,
  encodeObject,
  ObjectRuleError,
  prepareCreate,
  prepareDelete,
  prepareUpdate,
  prepareUpdateStatus,
  type StoredObject,
} from "./etcdobject.js";

const now = new Date("2025-01-02T03:04:05.678Z");
const base = (): StoredObject => ({
  apiVersion: "weft.dev/v1alpha1",
  kind: "BGPPeer",
  metadata: {
    name: "p",
    resourceVersion: "9",
    uid: "u-1",
    creationTimestamp: "2024-01-01T00:00:00Z",
    generation: 3,
  },
  spec: { port: 1 },
  status: { ok: true },
});

describe("apiserver write semantics for etcd", () => {
  it("create: uid, creationTimestamp, generation 1; status, version and deletion marks dropped", () => {
    const o = base();
    o.metadata.deletionTimestamp = "x";
    const c = prepareCreate(o, "BGPPeer", "new-uid", now);
    assert.deepEqual(c.metadata, {
      name: "p",
      uid: "new-uid",
      creationTimestamp: "2025-01-02T03:04:05Z",
      generation: 1,
    });
    assert.equal(c.status, undefined);
    assert.throws(
      () => prepareCreate({ ...o, metadata: { name: "A_b" } }, "BGPPeer", "u", now),
      ObjectRuleError,
    );
  });

  it("update keeps status and immutable metadata, bumps generation only for spec changes", () => {
    const stored = base();
    const same = prepareUpdate(stored, { ...base(), status: { ok: false } });
    assert.deepEqual(same, {}, "status from the caller is ignored: nothing to write");
    const labelled = prepareUpdate(stored, {
      ...base(),
      metadata: { ...base().metadata, labels: { a: "b" }, uid: "z" },
    });
    assert.equal(labelled.next?.metadata.generation, 3);
    assert.equal(labelled.next?.metadata.uid, "u-1");
    assert.equal(labelled.next?.metadata.resourceVersion, undefined);
    const spec = prepareUpdate(stored, { ...base(), spec: { port: 2 } });
    assert.equal(spec.next?.metadata.generation, 4);
    assert.deepEqual(spec.next?.status, { ok: true });
  });

  it("updateStatus changes the status only", () => {
    const r = prepareUpdateStatus(base(), { ...base(), spec: { port: 99 }, status: { ok: false } });
    assert.deepEqual(r.next?.spec, { port: 1 });
    assert.deepEqual(r.next?.status, { ok: false });
    assert.equal(r.next?.metadata.generation, 3);
  });

  it("finalizers: delete marks; no new finalizers while deleting; the last one removed deletes", () => {
    const o = base();
    o.metadata.finalizers = ["f"];
    assert.equal(prepareDelete(base(), now), undefined, "no finalizers: delete now");
    const marked = prepareDelete(o, now)!.next!;
    assert.equal(marked.metadata.deletionTimestamp, apiTimestamp(now));
    assert.equal(marked.metadata.generation, 4);
    assert.deepEqual(prepareDelete(marked, now), {}, "already marked: nothing to write");
    assert.throws(
      () => prepareUpdate(marked, { ...marked, metadata: { ...marked.metadata, finalizers: ["f", "g"] } }),
      /no new finalizers/,
    );
    const gone = prepareUpdate(marked, { ...marked, metadata: { ...marked.metadata, finalizers: [] } });
    assert.equal(gone.remove, true);
  });

  it("encodes without resourceVersion and decodes with the revision given", () => {
    const bytes = encodeObject(base());
    assert.doesNotMatch(bytes, /resourceVersion/);
    const back = decodeObject<StoredObject>(Buffer.from(bytes), "42");
    assert.equal(back.metadata.resourceVersion, "42");
    assert.deepEqual(back.spec, { port: 1 });
  });
});
