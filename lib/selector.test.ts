import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { matchesSelector, parseSelector } from "./selector.js";

describe("matchesSelector", () => {
  const labels = { zone: "a", tier: "edge", rr: "" };
  it("matches everything with no selector", () => {
    assert.equal(matchesSelector(undefined, labels), true);
    assert.equal(matchesSelector({}, {}), true);
  });
  it("applies matchLabels and every operator", () => {
    assert.equal(matchesSelector({ matchLabels: { zone: "a" } }, labels), true);
    assert.equal(matchesSelector({ matchLabels: { zone: "b" } }, labels), false);
    assert.equal(
      matchesSelector(
        { matchExpressions: [{ key: "tier", operator: "In", values: ["edge", "core"] }] },
        labels,
      ),
      true,
    );
    assert.equal(
      matchesSelector({ matchExpressions: [{ key: "tier", operator: "NotIn", values: ["edge"] }] }, labels),
      false,
    );
    assert.equal(
      matchesSelector({ matchExpressions: [{ key: "missing", operator: "NotIn", values: ["x"] }] }, labels),
      true,
    );
    assert.equal(matchesSelector({ matchExpressions: [{ key: "rr", operator: "Exists" }] }, labels), true);
    assert.equal(
      matchesSelector({ matchExpressions: [{ key: "rr", operator: "DoesNotExist" }] }, labels),
      false,
    );
  });
});

describe("parseSelector", () => {
  it("parses kubectl's syntax", () => {
    assert.deepEqual(parseSelector("a=b, c==d,e!=f,g,!h,i in (x, y),j notin (z)"), {
      matchLabels: { a: "b", c: "d" },
      matchExpressions: [
        { key: "e", operator: "NotIn", values: ["f"] },
        { key: "g", operator: "Exists" },
        { key: "h", operator: "DoesNotExist" },
        { key: "i", operator: "In", values: ["x", "y"] },
        { key: "j", operator: "NotIn", values: ["z"] },
      ],
    });
    assert.deepEqual(parseSelector(""), {});
  });
  it("round-trips through matchesSelector", () => {
    const s = parseSelector("weft.dev/test-run=42,!weft.dev/skip");
    assert.equal(matchesSelector(s, { "weft.dev/test-run": "42" }), true);
    assert.equal(matchesSelector(s, { "weft.dev/test-run": "42", "weft.dev/skip": "" }), false);
    assert.equal(matchesSelector(s, { "weft.dev/test-run": "43" }), false);
  });
  it("refuses malformed terms", () => {
    assert.throws(() => parseSelector("a=b,=c"), /invalid label selector term "=c"/);
  });
});
