import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { conditionOf, isTrue, mergeConditions, setCondition } from "./conditions.js";

describe("setCondition", () => {
  const t0 = new Date("2026-01-01T00:00:00.000Z");
  const t1 = new Date("2026-01-01T00:05:00.000Z");

  it("adds a condition with observedGeneration and a transition time", () => {
    const c = setCondition(undefined, { type: "Ready", status: true, reason: "Ok", message: "fine" }, 3, t0);
    assert.deepEqual(c, [
      {
        type: "Ready",
        status: "True",
        reason: "Ok",
        message: "fine",
        lastTransitionTime: "2026-01-01T00:00:00Z",
        observedGeneration: 3,
      },
    ]);
  });

  it("keeps lastTransitionTime while the status holds, moves it when it flips", () => {
    const a = setCondition(undefined, { type: "Ready", status: true, reason: "Ok", message: "" }, 1, t0);
    const b = setCondition(a, { type: "Ready", status: true, reason: "StillOk", message: "x" }, 2, t1);
    assert.equal(b[0]?.lastTransitionTime, "2026-01-01T00:00:00Z");
    assert.equal(b[0]?.reason, "StillOk");
    assert.equal(b[0]?.observedGeneration, 2);
    const c = setCondition(b, { type: "Ready", status: false, reason: "Broken", message: "y" }, 2, t1);
    assert.equal(c[0]?.lastTransitionTime, "2026-01-01T00:05:00Z");
    assert.equal(isTrue(c, "Ready"), false);
  });

  it("leaves other conditions and the input untouched", () => {
    const a = setCondition(undefined, { type: "Ready", status: true, reason: "Ok", message: "" }, 1, t0);
    const b = setCondition(
      a,
      { type: "Exhausted", status: "Unknown", reason: "NotChecked", message: "" },
      1,
      t1,
    );
    assert.equal(a.length, 1);
    assert.equal(b.length, 2);
    assert.equal(conditionOf(b, "Exhausted")?.status, "Unknown");
    assert.equal(isTrue(b, "Ready"), true);
  });
});

describe("mergeConditions", () => {
  it("becomes exactly the named conditions, keeping a transition time where the status stayed", () => {
    const old = setCondition(
      setCondition(
        undefined,
        { type: "Ready", status: true, reason: "Ok", message: "" },
        1,
        new Date("2026-01-01T00:00:00Z"),
      ),
      { type: "Exhausted", status: false, reason: "Free", message: "" },
      1,
      new Date("2026-01-01T00:00:00Z"),
    );
    const merged = mergeConditions(
      old,
      [
        { type: "Ready", status: "True", reason: "StillOk", message: "m" },
        { type: "Overlapping", status: "False", reason: "NoOverlap", message: "" },
      ],
      2,
      "2026-02-02T00:00:00Z",
    );
    assert.deepEqual(
      merged.map((c) => [c.type, c.reason, c.lastTransitionTime, c.observedGeneration]),
      [
        ["Ready", "StillOk", "2026-01-01T00:00:00Z", 2],
        ["Overlapping", "NoOverlap", "2026-02-02T00:00:00Z", 2],
      ],
    );
  });
});
