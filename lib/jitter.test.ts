import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jittered } from "./jitter.js";

describe("jittered", () => {
  it("spreads a period by the fraction either way, from the random source given", () => {
    const cases: [period: number, fraction: number, draw: number, want: number][] = [
      [60_000, 0.1, 0, 54_000],
      [60_000, 0.1, 0.5, 60_000],
      [60_000, 0.1, 0.999_999, 66_000],
      [1000, 0, 0.3, 1000],
    ];
    for (const [period, fraction, draw, want] of cases) {
      assert.equal(
        jittered(period, fraction, () => draw),
        want,
        `${period} ms ±${fraction} at draw ${draw}`,
      );
    }
  });

  it("gives processes started together different periods", () => {
    const periods = new Set(Array.from({ length: 20 }, () => jittered(60_000)));
    assert.ok(periods.size > 1, "twenty draws were all equal");
    for (const p of periods) assert.ok(p >= 54_000 && p <= 66_000, String(p));
  });
});
