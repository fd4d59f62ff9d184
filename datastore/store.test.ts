import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fieldSelector, selects } from "./store.js";

describe("field selections", () => {
  const block = (affinity: string) => ({ metadata: { name: "b" }, spec: { affinity, cidr: "10.0.0.0/26" } });

  it("select objects whose field at the dotted path equals the value", () => {
    const sel = { "spec.affinity": "node-a" };
    assert.equal(selects(sel, block("node-a")), true);
    assert.equal(selects(sel, block("node-b")), false);
    assert.equal(selects(undefined, block("node-b")), true, "no selection selects everything");
    assert.equal(selects({ "spec.affinity": "node-a", "spec.cidr": "10.0.0.64/26" }, block("node-a")), false);
  });

  it("let a bare deletion through: without the field it cannot be told apart", () => {
    assert.equal(selects({ "spec.affinity": "node-a" }, { metadata: { name: "b" } }), true);
  });

  it("become the apiserver's fieldSelector", () => {
    assert.equal(fieldSelector({ "spec.affinity": "node-a" }), "spec.affinity=node-a");
    assert.equal(fieldSelector({ "spec.a": "1", "spec.b": "2" }), "spec.a=1,spec.b=2");
    assert.equal(fieldSelector(undefined), undefined);
    assert.equal(fieldSelector({}), undefined);
  });
});
