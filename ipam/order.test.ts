import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPPoolSpec } from "../api/ippool.js";
import {
  blockCidrAt,
  blockCount,
  blockIndexOf,
  candidateBlocks,
  candidateIndex,
  candidateIndices,
  orderKey,
  parsePool,
  permute,
  takenIndices,
} from "./index.js";

const pool = (cidr: string, extra: Partial<IPPoolSpec> = {}) =>
  parsePool({ name: "p", spec: { cidr, ...extra } });

function take<T>(g: Iterable<T>, n: number): T[] {
  const out: T[] = [];
  for (const v of g) {
    out.push(v);
    if (out.length >= n) break;
  }
  return out;
}

describe("ipam candidate order", () => {
  it("is a permutation of every block index (small pools, every size)", () => {
    for (let prefix = 20; prefix <= 32; prefix++) {
      const p = pool(`10.0.0.0/${prefix}`, { blockSize: 32 });
      const n = Number(blockCount(p));
      const key = orderKey(p, `node-${prefix}`);
      const seen = new Set<bigint>();
      for (let i = 0n; i < BigInt(n); i++) seen.add(permute(key, i));
      assert.equal(seen.size, n, `/${prefix}`);
      for (const v of seen) assert.ok(v >= 0n && v < BigInt(n));
    }
  });

  it("yields every free block exactly once, then stops", () => {
    const p = pool("10.0.0.0/20");
    const all = [...candidateBlocks(p, "n1", [])];
    assert.equal(all.length, 64);
    assert.equal(new Set(all).size, 64);
    for (const c of all) assert.notEqual(blockIndexOf(p, c), undefined);
    const taken = new Set(all.slice(0, 60));
    const rest = [...candidateBlocks(p, "n1", taken)];
    assert.deepEqual(rest.sort(), all.slice(60).sort());
    assert.deepEqual([...candidateBlocks(p, "n1", new Set(all))], []);
  });

  it("ignores taken CIDRs that are not blocks of the pool", () => {
    const p = pool("10.0.0.0/24");
    const free = [...candidateBlocks(p, "n", ["192.168.0.0/26", "10.0.0.0/24", "10.0.0.1/26", "fd00::/122"])];
    assert.equal(free.length, 4);
    assert.deepEqual(takenIndices(p, ["192.168.0.0/26", "10.0.0.64/26", "10.0.0.1/26"]), new Set([1n]));
  });

  it("diverges between nodes", () => {
    const p = pool("10.244.0.0/16");
    const firsts = new Set<string>();
    for (let i = 0; i < 50; i++) firsts.add(take(candidateBlocks(p, `node-${i}`, []), 1)[0]!);
    // 50 draws from 1024 blocks: a handful of birthday collisions at most.
    assert.ok(firsts.size >= 45, `only ${firsts.size} distinct first blocks for 50 nodes`);
    const a = take(candidateBlocks(p, "node-a", []), 20);
    const b = take(candidateBlocks(p, "node-b", []), 20);
    assert.notDeepEqual(a, b);
    assert.ok(a.filter((c, i) => b[i] === c).length <= 1);
  });

  it("is stable for one node and depends on the pool", () => {
    const p = pool("10.244.0.0/16");
    assert.deepEqual(take(candidateBlocks(p, "n", []), 10), take(candidateBlocks(p, "n", []), 10));
    const q = parsePool({ name: "q", spec: { cidr: "10.244.0.0/16" } });
    assert.notDeepEqual(take(candidateBlocks(p, "n", []), 10), take(candidateBlocks(q, "n", []), 10));
  });

  it("enumerates a /8 lazily and finds the last free block of an almost full pool", () => {
    const p = pool("10.0.0.0/8");
    assert.equal(take(candidateBlocks(p, "n", []), 5).length, 5);
    // Every block but one taken: probing alone would need ~262k tries; the scan fallback is bounded.
    const n = Number(blockCount(p));
    const free = 123_457n;
    const taken = new Set<bigint>();
    for (let i = 0n; i < BigInt(n); i++) if (i !== free) taken.add(i);
    const found = [...candidateIndices(p, "n", (i) => taken.has(i), { maxProbes: 16 })];
    assert.deepEqual(found, [free]);
    assert.equal(blockCidrAt(p, free), "10.120.144.64/26");
    // Told that every block is taken, it stops without looking.
    let asked = 0;
    const none = [
      ...candidateIndices(
        p,
        "n",
        () => {
          asked++;
          return true;
        },
        { takenCount: blockCount(p) },
      ),
    ];
    assert.deepEqual(none, []);
    assert.equal(asked, 0);
  });

  it("walks an IPv6 /48 with /122 blocks (2^74 of them) without materializing", () => {
    const p = pool("fd00:1::/48");
    const first = take(candidateBlocks(p, "n", []), 1000);
    assert.equal(new Set(first).size, 1000);
    for (const c of first) assert.notEqual(blockIndexOf(p, c), undefined);
    const after = take(candidateBlocks(p, "n", new Set(first.slice(0, 10))), 1);
    assert.equal(after[0], first[10]);
    assert.ok(candidateIndex(p, "n", 2n ** 74n - 1n) < 2n ** 74n);
  });

  it("a pool of exactly one block always offers that block", () => {
    const p = pool("10.0.0.0/26");
    assert.deepEqual([...candidateBlocks(p, "x", [])], ["10.0.0.0/26"]);
    assert.deepEqual([...candidateBlocks(p, "x", ["10.0.0.0/26"])], []);
  });

  it("honours limit", () => {
    const p = pool("10.0.0.0/16");
    assert.equal([...candidateBlocks(p, "n", [], { limit: 3 })].length, 3);
    assert.equal([...candidateBlocks(p, "n", [], { limit: 0 })].length, 0);
  });
});
