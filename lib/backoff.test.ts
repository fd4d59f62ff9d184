import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { exponentialBackoff, jitteredBackoff } from "./backoff.js";

describe("backoff", () => {
  it("jittered backoff stays within [0, min(max, base * 2^attempt)]", () => {
    fc.assert(
      fc.property(
        fc.nat(200),
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (attempt, base, max, r) => {
          const d = jitteredBackoff(attempt, base, max, () => r);
          return d >= 0 && d <= Math.min(max, base * 2 ** Math.min(attempt, 30)) && Number.isInteger(d);
        },
      ),
    );
  });

  it("exponential backoff doubles and is capped", () => {
    assert.deepEqual(
      [0, 1, 2, 3].map((a) => exponentialBackoff(a, 10, 50)),
      [10, 20, 40, 50],
    );
    assert.equal(exponentialBackoff(10_000, 10, 50), 50);
  });
});
