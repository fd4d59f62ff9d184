import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assignInBlock, checkBlock, newBlockSpec, parsePool, poolUsage } from "./index.js";

describe("ipam pool usage", () => {
  it("counts blocks and addresses of the pool only", () => {
    const pool = parsePool({ name: "p", spec: { cidr: "10.0.0.0/24" } });
    const a = assignInBlock(newBlockSpec("10.0.0.0/26", "p", "n1"), [{ handle: "x" }, { handle: "y" }]).spec;
    const b = newBlockSpec("10.0.0.64/26", "p", "n2");
    const foreign = assignInBlock(newBlockSpec("10.1.0.0/26", "q", "n1"), [{ handle: "z" }]).spec;
    const misnamed = newBlockSpec("10.9.0.0/26", "p", "n1");
    assert.deepEqual(poolUsage(pool, [a, b, foreign, misnamed]), {
      blocksUsed: 2,
      blocksTotal: 4n,
      addressesUsed: 2,
      addressesTotal: 256n,
      addressesFree: 254n,
    });
  });

  it("IPv6 totals exceed 2^53 and stay exact", () => {
    const pool = parsePool({ name: "v6", spec: { cidr: "fd00:10:244::/64" } });
    const u = poolUsage(pool, []);
    assert.equal(u.blocksTotal, 2n ** 58n);
    assert.equal(u.addressesFree, 2n ** 64n);
  });

  it("flags a block CIDR that is not canonical", () => {
    const errs = checkBlock(newBlockSpec("FD00::0/122", "p", "n1"));
    assert.deepEqual(errs, ["block FD00::0/122: CIDR is not in canonical form fd00::/122"]);
  });
});
