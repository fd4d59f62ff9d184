import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TestObject } from "./listwatch-support.js";
import {
  and,
  annotationsChanged,
  beingDeleted,
  changed,
  createOrDelete,
  filtered,
  generationChanged,
  labelsChanged,
  matching,
  not,
  or,
  type Predicate,
  resourceVersionChanged,
  resync,
} from "./predicates.js";

const obj = (meta: Partial<TestObject["metadata"]> & Record<string, unknown> = {}): TestObject => ({
  metadata: { name: "a", resourceVersion: "1", generation: 1, ...meta },
});

/** What a predicate says about create, update old -> new, and delete. */
function verdicts(p: Predicate<TestObject>, o: TestObject, n: TestObject) {
  return {
    create: p.create?.(n) ?? true,
    update: p.update?.(o, n) ?? true,
    delete: p.delete?.(n) ?? true,
  };
}

describe("predicates", () => {
  const base = obj({ labels: { zone: "a" }, annotations: { note: "x" } });

  it("generationChanged passes spec changes only; create and delete always", () => {
    assert.deepEqual(verdicts(generationChanged, base, obj({ generation: 2 })), {
      create: true,
      update: true,
      delete: true,
    });
    assert.equal(generationChanged.update?.(base, obj({ resourceVersion: "2" })), false, "a status write");
    assert.equal(generationChanged.update?.(base, base), false, "a resync");
  });

  it("labelsChanged and annotationsChanged compare values, not key order or a missing map", () => {
    const reordered = obj({ labels: { b: "2", a: "1" } });
    assert.equal(labelsChanged.update?.(obj({ labels: { a: "1", b: "2" } }), reordered), false);
    assert.equal(labelsChanged.update?.(obj(), obj({ labels: {} })), false, "no labels and {} are the same");
    assert.equal(labelsChanged.update?.(base, obj({ labels: { zone: "b" } })), true);
    assert.equal(annotationsChanged.update?.(base, obj({ annotations: { note: "y" } })), true);
    assert.equal(
      annotationsChanged.update?.(base, obj({ labels: { zone: "b" }, annotations: { note: "x" } })),
      false,
    );
  });

  it("resourceVersionChanged passes every update but a resync; resync passes nothing else", () => {
    assert.equal(resourceVersionChanged.update?.(base, obj({ resourceVersion: "2" })), true);
    assert.equal(resourceVersionChanged.update?.(base, base), false);
    assert.deepEqual(verdicts(resync, base, base), { create: false, update: true, delete: false });
    assert.equal(resync.update?.(base, obj({ resourceVersion: "2" })), false);
  });

  it("changed(select) watches one field; beingDeleted and createOrDelete", () => {
    const size = changed<TestObject>((o) => o.spec?.size);
    assert.equal(size.update?.(obj({}), { ...obj(), spec: { size: 2 } }), true);
    assert.equal(size.update?.({ ...obj(), spec: { size: 2 } }, { ...obj(), spec: { size: 2 } }), false);
    assert.equal(beingDeleted.update?.(base, obj({ deletionTimestamp: "2026-01-01T00:00:00Z" })), true);
    assert.equal(beingDeleted.update?.(base, obj()), false);
    assert.deepEqual(verdicts(createOrDelete, base, obj({ generation: 9 })), {
      create: true,
      update: false,
      delete: true,
    });
  });

  it("matching passes an update when the object enters or leaves the set", () => {
    const inZoneA = matching<TestObject>((o) => o.metadata.labels?.zone === "a");
    const elsewhere = obj({ labels: { zone: "b" } });
    assert.equal(inZoneA.create?.(elsewhere), false);
    assert.equal(inZoneA.update?.(base, elsewhere), true, "leaving");
    assert.equal(inZoneA.update?.(elsewhere, base), true, "entering");
    assert.equal(inZoneA.update?.(elsewhere, elsewhere), false);
  });

  it("and, or, not combine per kind of event", () => {
    const resyncOrLabels = or(resync, labelsChanged);
    assert.deepEqual(verdicts(resyncOrLabels, base, base), { create: true, update: true, delete: true });
    assert.equal(resyncOrLabels.update?.(base, obj({ labels: { zone: "a" }, resourceVersion: "2" })), false);
    const specAndLabels = and(generationChanged, labelsChanged);
    assert.equal(specAndLabels.update?.(base, obj({ generation: 2, labels: { zone: "a" } })), false);
    assert.equal(specAndLabels.update?.(base, obj({ generation: 2, labels: { zone: "b" } })), true);
    assert.deepEqual(verdicts(not(createOrDelete), base, base), {
      create: false,
      update: true,
      delete: false,
    });
  });

  it("filtered calls a handler only for the events that pass", () => {
    const seen: string[] = [];
    const h = filtered<TestObject>(generationChanged, {
      add: (o) => seen.push(`add ${o.metadata.name}`),
      update: (_o, n) => seen.push(`update ${n.metadata.generation}`),
    });
    h.add?.(base);
    h.update?.(base, obj({ resourceVersion: "2" }));
    h.update?.(base, obj({ generation: 3 }));
    assert.deepEqual(seen, ["add a", "update 3"]);
    assert.equal(h.delete, undefined, "no handler is made up");
  });
});
