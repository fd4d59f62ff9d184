import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sameValue } from "./same.js";

describe("sameValue", () => {
  it("ignores key order and undefined members, at any depth", () => {
    assert.equal(
      sameValue({ a: 1, b: { c: [1, { d: 2, e: 3 }] } }, { b: { c: [1, { e: 3, d: 2 }] }, a: 1 }),
      true,
    );
    assert.equal(sameValue({ a: 1, x: undefined }, { a: 1 }), true);
  });
  it("sees changed values, array order and missing members", () => {
    assert.equal(sameValue({ a: 1 }, { a: 2 }), false);
    assert.equal(sameValue([1, 2], [2, 1]), false);
    assert.equal(sameValue({ a: 1, b: 2 }, { a: 1 }), false);
  });
});
