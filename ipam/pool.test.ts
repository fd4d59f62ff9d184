import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPPoolSpec } from "../api/ippool.js";
import {
  blockCidrAt,
  blockCidrFor,
  blockCount,
  blockIndexOf,
  findOverlaps,
  isIpamError,
  parsePool,
  poolContains,
  validatePoolSpec,
} from "./index.js";

const pool = (cidr: string, extra: Partial<IPPoolSpec> = {}, name = "p") =>
  parsePool({ name, spec: { cidr, ...extra } });

describe("ipam pools", () => {
  it("applies defaults per family", () => {
    const v4 = pool("10.244.0.0/16");
    assert.equal(v4.family, 4);
    assert.equal(v4.blockSize, 26);
    assert.equal(v4.blockAddresses, 64);
    assert.equal(v4.allocation, "Blocks");
    assert.equal(v4.strictAffinity, true);
    assert.equal(v4.maxBlocksPerNode, undefined);
    assert.equal(v4.disabled, false);
    const v6 = pool("fd00:10:244::/64");
    assert.equal(v6.family, 6);
    assert.equal(v6.blockSize, 122);
    assert.equal(v6.blockAddresses, 64);
    assert.equal(pool("10.0.0.0/8", { maxBlocksPerNode: 0 }).maxBlocksPerNode, undefined);
  });

  it("reports every invalid field by name", () => {
    const cases: Array<[IPPoolSpec, RegExp]> = [
      [{ cidr: "10.244.0.1/16" }, /spec\.cidr: .*host bits set \(did you mean 10\.244\.0\.0\/16\?\)/],
      [{ cidr: "nonsense" }, /spec\.cidr: "nonsense" is not an IPv4 or IPv6 CIDR/],
      [{ cidr: "169.254.0.0/16" }, /spec\.cidr: .*link-local/],
      [{ cidr: "fe80::/64" }, /spec\.cidr: .*link-local/],
      [{ cidr: "0.0.0.0/0" }, /link-local/],
      [{ cidr: "127.0.0.0/16" }, /loopback/],
      [{ cidr: "ff00::/64" }, /multicast/],
      [{ cidr: "10.0.0.0/16", blockSize: 19 }, /spec\.blockSize: 19 is outside 20-32 for IPv4/],
      [{ cidr: "10.0.0.0/16", blockSize: 33 }, /spec\.blockSize: 33 is outside 20-32/],
      [{ cidr: "fd00::/64", blockSize: 115 }, /spec\.blockSize: 115 is outside 116-128 for IPv6/],
      [{ cidr: "10.0.0.0/28" }, /spec\.blockSize: \/26 blocks do not fit in the \/28 pool/],
      [{ cidr: "10.0.0.0/16", blockSize: 26.5 }, /spec\.blockSize/],
      [{ cidr: "fd00::/64", encapsulation: "IPIP" }, /spec\.encapsulation: IPIP carries IPv4 only/],
      [{ cidr: "10.0.0.0/16", encapsulation: "GRE" as never }, /spec\.encapsulation: "GRE"/],
      [{ cidr: "10.0.0.0/16", allocation: "Random" as never }, /spec\.allocation: "Random"/],
      [{ cidr: "10.0.0.0/16", maxBlocksPerNode: -1 }, /spec\.maxBlocksPerNode: -1/],
      [{ cidr: "10.0.0.0/16", vxlan: { vni: 0 } }, /spec\.vxlan\.vni: 0/],
      [{ cidr: "10.0.0.0/16", vxlan: { port: 70000 } }, /spec\.vxlan\.port: 70000/],
    ];
    for (const [spec, re] of cases) {
      const errs = validatePoolSpec(spec);
      assert.ok(
        errs.some((e) => re.test(e)),
        `${JSON.stringify(spec)}: ${JSON.stringify(errs)}`,
      );
      assert.throws(
        () => parsePool({ name: "bad", spec }),
        (e) =>
          isIpamError(e, "InvalidPool") && /IPPool bad is invalid/.test(e.message) && e.pools[0] === "bad",
      );
    }
    assert.deepEqual(validatePoolSpec({ cidr: "10.0.0.0/26", blockSize: 26, encapsulation: "IPIP" }), []);
    assert.deepEqual(validatePoolSpec({ cidr: "fd00::/122" }), []);
  });

  it("counts and locates IPv4 blocks", () => {
    const p = pool("10.244.0.0/16");
    assert.equal(blockCount(p), 1024n);
    assert.equal(blockCidrAt(p, 0n), "10.244.0.0/26");
    assert.equal(blockCidrAt(p, 1n), "10.244.0.64/26");
    assert.equal(blockCidrAt(p, 13n), "10.244.3.64/26");
    assert.equal(blockCidrAt(p, 1023n), "10.244.255.192/26");
    assert.throws(() => blockCidrAt(p, 1024n), RangeError);
    assert.throws(() => blockCidrAt(p, -1n), RangeError);
    assert.equal(blockIndexOf(p, "10.244.3.64/26"), 13n);
    assert.equal(blockIndexOf(p, "10.244.3.65/26"), undefined, "not a block boundary");
    assert.equal(blockIndexOf(p, "10.244.3.0/24"), undefined, "wrong size");
    assert.equal(blockIndexOf(p, "10.245.0.0/26"), undefined, "outside");
    assert.equal(blockIndexOf(p, "fd00::/122"), undefined, "other family");
    assert.equal(blockCidrFor(p, "10.244.3.100"), "10.244.3.64/26");
    assert.equal(blockCidrFor(p, "10.243.3.100"), undefined);
    assert.ok(poolContains(p, "10.244.255.255"));
    assert.ok(!poolContains(p, "10.245.0.0"));
    assert.ok(!poolContains(p, "garbage"));
  });

  it("handles a /8 and an IPv6 /48 without materializing blocks", () => {
    const big = pool("10.0.0.0/8");
    assert.equal(blockCount(big), 262144n);
    assert.equal(blockCidrAt(big, 262143n), "10.255.255.192/26");
    const v6 = pool("fd00:1::/48");
    assert.equal(blockCount(v6), 2n ** 74n);
    const last = blockCidrAt(v6, 2n ** 74n - 1n);
    assert.equal(last, "fd00:1:0:ffff:ffff:ffff:ffff:ffc0/122");
    assert.equal(blockIndexOf(v6, last), 2n ** 74n - 1n);
    assert.equal(blockIndexOf(v6, "FD00:1:0:FFFF:FFFF:FFFF:FFFF:FFC0/122"), 2n ** 74n - 1n);
  });

  it("IPv6 /64 with /122 blocks", () => {
    const p = pool("fd00:10:244::/64");
    assert.equal(blockCount(p), 2n ** 58n);
    assert.equal(blockCidrAt(p, 0n), "fd00:10:244::/122");
    assert.equal(blockCidrAt(p, 1n), "fd00:10:244::40/122");
    assert.equal(blockCidrFor(p, "fd00:10:244::7f"), "fd00:10:244::40/122");
    assert.ok(poolContains(p, "fd00:10:244:0:ffff:ffff:ffff:ffff"));
    assert.ok(!poolContains(p, "fd00:10:244:1::"));
  });

  it("finds overlapping pools", () => {
    const pools = [
      pool("10.0.0.0/8", {}, "a"),
      pool("10.1.0.0/16", {}, "b"),
      pool("192.168.0.0/16", {}, "c"),
      pool("10.1.2.0/24", {}, "d"),
      pool("fd00::/64", {}, "e"),
    ];
    const o = findOverlaps(pools);
    assert.deepEqual(o.get("a"), ["b", "d"]);
    assert.deepEqual(o.get("b"), ["a", "d"]);
    assert.deepEqual(o.get("d"), ["a", "b"]);
    assert.equal(o.has("c"), false);
    assert.equal(o.has("e"), false);
  });
});
