import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { IPAMBlockSpec } from "../api/ipamblock.js";
import { cidrsOverlap, formatIP } from "../net/index.js";
import {
  type AssignRequest,
  assignInBlock,
  blockCidrAt,
  blockCount,
  blockIndexOf,
  candidateBlocks,
  checkBlock,
  findHandle,
  newBlockSpec,
  orderKey,
  ordinalOf,
  parseCidr,
  parseIP,
  parsePool,
  permute,
  planAssignment,
  poolContains,
  release,
  releaseIfSequence,
} from "./index.js";

const RUNS = { numRuns: 150 };

/** A block of 2^bits addresses in some random state reached through the public operations. */
const blockState = (bits: number) =>
  fc.array(fc.tuple(fc.boolean(), fc.nat(40)), { maxLength: 60 }).map((ops) => {
    let b = newBlockSpec(bits <= 8 ? `10.1.2.0/${32 - bits}` : "10.1.0.0/20", "p", "n");
    let next = 0;
    for (const [assign, k] of ops) {
      if (assign) b = assignInBlock(b, [{ handle: `h${next++}` }]).spec;
      else if (b.allocations.length > 0) b = release(b, b.allocations[k % b.allocations.length]!.handle).spec;
    }
    return b;
  });

function assertBlockSane(b: IPAMBlockSpec): void {
  assert.deepEqual(checkBlock(b), []);
  const ips = b.allocations.map((a) =>
    formatIP(parseCidr(b.cidr).family, parseCidr(b.cidr).base + BigInt(a.ordinal)),
  );
  assert.equal(new Set(ips).size, ips.length);
  for (const ip of ips) assert.notEqual(ordinalOf(b, ip), undefined);
}

describe("ipam properties", () => {
  it("a block never holds one ordinal twice, whatever the operations", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant("assign" as const),
              n: fc.integer({ min: 1, max: 12 }),
              dup: fc.boolean(),
            }),
            fc.record({ op: fc.constant("release" as const), k: fc.nat() }),
            fc.record({
              op: fc.constant("stale" as const),
              k: fc.nat(),
              delta: fc.integer({ min: -3, max: 3 }),
            }),
          ),
          { maxLength: 40 },
        ),
        (bits, ops) => {
          let b = newBlockSpec(`10.7.7.0/${32 - bits}`, "p", "n");
          let next = 0;
          for (const o of ops) {
            if (o.op === "assign") {
              const reqs: AssignRequest[] = Array.from({ length: o.n }, () => ({ handle: `h${next++}` }));
              if (o.dup && b.allocations.length > 0) reqs.push({ handle: b.allocations[0]!.handle });
              const before = b;
              const r = assignInBlock(b, reqs);
              b = r.spec;
              assert.equal(r.assigned.length + r.unassigned.length, reqs.length);
              // Nothing that was held changes hands.
              for (const a of before.allocations) {
                assert.deepEqual(
                  b.allocations.find((x) => x.ordinal === a.ordinal),
                  a,
                );
              }
            } else if (o.op === "release" && b.allocations.length > 0) {
              const victim = b.allocations[o.k % b.allocations.length]!;
              const r = release(b, victim.handle);
              assert.equal(r.released.length, 1);
              b = r.spec;
            } else if (o.op === "stale" && b.allocations.length > 0) {
              const a = b.allocations[o.k % b.allocations.length]!;
              const r = releaseIfSequence(b, a.handle, a.ordinal, a.sequence + o.delta);
              assert.equal(r.changed, o.delta === 0);
              b = r.spec;
            }
            assertBlockSane(b);
          }
        },
      ),
      RUNS,
    );
  });

  it("a released address becomes allocatable again", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.nat(), (bits, k) => {
        const size = 2 ** bits;
        const reqs = Array.from({ length: size }, (_, i) => ({ handle: `h${i}` }));
        const filled = assignInBlock(newBlockSpec(`10.0.0.0/${32 - bits}`, "p", "n"), reqs);
        assert.equal(filled.assigned.length, size);
        const victim = filled.assigned[k % size]!;
        const freed = release(filled.spec, victim.handle);
        const again = assignInBlock(freed.spec, [{ handle: "new" }]);
        assert.equal(again.assigned[0]!.ip, victim.ip);
        assert.ok(again.assigned[0]!.sequence > victim.sequence);
      }),
      RUNS,
    );
  });

  it("sequence numbers stop a stale release from freeing a reused address", () => {
    fc.assert(
      fc.property(blockState(4), fc.nat(), (b0, k) => {
        fc.pre(b0.allocations.length > 0);
        const seen = b0.allocations[k % b0.allocations.length]!;
        // The address is released and, after the cursor goes round, handed out again.
        let b = release(b0, seen.handle).spec;
        let i = 0;
        while (!b.allocations.some((a) => a.ordinal === seen.ordinal)) {
          b = assignInBlock(b, [{ handle: `re${i++}` }]).spec;
        }
        const reused = b.allocations.find((a) => a.ordinal === seen.ordinal)!;
        assert.ok(reused.sequence > seen.sequence);
        assert.equal(releaseIfSequence(b, seen.handle, seen.ordinal, seen.sequence).changed, false);
        assert.equal(releaseIfSequence(b, reused.handle, seen.ordinal, seen.sequence).changed, false);
        assert.equal(releaseIfSequence(b, reused.handle, reused.ordinal, reused.sequence).released.length, 1);
      }),
      RUNS,
    );
  });

  it("group assign of N requests gives the same distinct addresses as N single assigns", () => {
    fc.assert(
      fc.property(blockState(4), fc.integer({ min: 0, max: 20 }), (b, n) => {
        const reqs = Array.from({ length: n }, (_, i) => ({ handle: `g${i}` }));
        const group = assignInBlock(b, reqs);
        let single = b;
        const singles: string[] = [];
        for (const r of reqs) {
          const one = assignInBlock(single, [r]);
          single = one.spec;
          singles.push(...one.assigned.map((a) => a.ip));
        }
        const free = 16 - b.allocations.length;
        assert.equal(group.assigned.length, Math.min(n, free));
        assert.equal(singles.length, group.assigned.length);
        assert.equal(new Set(group.assigned.map((a) => a.ip)).size, group.assigned.length);
        assert.equal(new Set(singles).size, singles.length);
        assert.equal(group.spec.sequence, single.sequence);
        assert.equal(group.spec.allocations.length, single.allocations.length);
        // Both only use addresses that were free.
        const held = new Set(b.allocations.map((a) => a.ordinal));
        for (const a of group.assigned) assert.ok(!held.has(a.ordinal));
        assertBlockSane(group.spec);
        assertBlockSane(single);
      }),
      RUNS,
    );
  });

  it("the candidate order is a permutation of the blocks for every size and node", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 11 }),
        fc.string({ minLength: 1, maxLength: 20 }),
        (bits, node) => {
          const pool = parsePool({ name: "p", spec: { cidr: `10.0.0.0/${32 - bits - 6}` } });
          const key = orderKey(pool, node);
          const n = 2 ** bits;
          const seen = new Set<bigint>();
          for (let i = 0; i < n; i++) seen.add(permute(key, BigInt(i)));
          assert.equal(seen.size, n);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("candidate orders of different nodes diverge", () => {
    fc.assert(
      fc.property(
        fc.tuple(fc.string({ minLength: 1, maxLength: 30 }), fc.string({ minLength: 1, maxLength: 30 })),
        fc.constantFrom("10.0.0.0/16", "10.0.0.0/8", "fd00:1::/48"),
        ([a, b], cidr) => {
          fc.pre(a !== b);
          const pool = parsePool({ name: "p", spec: { cidr } });
          const first = (node: string) => [...candidateBlocks(pool, node, [], { limit: 8 })];
          const ca = first(a);
          const cb = first(b);
          assert.notDeepEqual(ca, cb);
          // Agreement at the same position is as rare as chance makes it (>= 1024 blocks).
          assert.ok(ca.filter((c, i) => cb[i] === c).length <= 2);
        },
      ),
      RUNS,
    );
  });

  it("block index and CIDR convert both ways and every block lies inside its pool", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(
          { cidr: "10.0.0.0/8" },
          { cidr: "192.168.0.0/20", blockSize: 24 },
          { cidr: "fd00:1::/48" },
          { cidr: "fd00:10:244::/64", blockSize: 120 },
        ),
        fc.bigInt({ min: 0n, max: 2n ** 80n }),
        (spec, raw) => {
          const pool = parsePool({ name: "p", spec });
          const i = raw % blockCount(pool);
          const cidr = blockCidrAt(pool, i);
          assert.equal(blockIndexOf(pool, cidr), i);
          const c = parseCidr(cidr);
          assert.ok(poolContains(pool, formatIP(c.family, c.base)));
          assert.ok(
            poolContains(
              pool,
              formatIP(c.family, c.base + 2n ** BigInt((c.family === 4 ? 32 : 128) - c.prefix) - 1n),
            ),
          );
          if (i + 1n < blockCount(pool)) assert.ok(!cidrsOverlap(c, parseCidr(blockCidrAt(pool, i + 1n))));
        },
      ),
      RUNS,
    );
  });

  it("IPv6 text round-trips through parse and format", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 128n - 1n }), (v) => {
        const s = formatIP(6, v);
        assert.equal(parseIP(s).value, v);
        assert.equal(s, s.toLowerCase());
        assert.ok(!s.includes(":::"));
      }),
      RUNS,
    );
  });
});

/**
 * A small in-memory cluster driving the planner the way the agent does: plan, assign into the
 * chosen block, store it (the compare-and-swap always succeeds here), plan again for the rest.
 */
class World {
  readonly blocks = new Map<string, IPAMBlockSpec>();
  readonly held = new Map<string, string>(); // handle -> node
  constructor(
    readonly pools: {
      name: string;
      spec: { cidr: string; blockSize?: number; strictAffinity?: boolean; maxBlocksPerNode?: number };
    }[],
    readonly family: 4 | 6,
  ) {}

  assign(node: string, handles: string[]): { exhausted: boolean } {
    let todo = handles.filter((h) => findHandle([...this.blocks.values()], h).length === 0);
    for (let guard = 0; todo.length > 0; guard++) {
      assert.ok(guard < 1000, "planner loops");
      const all = [...this.blocks.values()];
      const plan = planAssignment({
        family: this.family,
        pools: this.pools,
        node: { name: node },
        ownBlocks: all.filter((b) => b.affinity === node),
        claimed: new Map(all.map((b) => [b.cidr, b.affinity])),
        borrowable: all.filter((b) => b.affinity !== node),
        count: todo.length,
      });
      if (plan.kind === "error") {
        assert.equal(plan.error.code, "Exhausted");
        assert.match(plan.error.message, new RegExp(`node ${node}`));
        return { exhausted: true };
      }
      if (plan.kind === "claim") assert.ok(!this.blocks.has(plan.cidr), "claims a block that exists");
      if (plan.kind === "useBlock") assert.equal(plan.block.affinity, node);
      if (plan.kind === "borrow") assert.notEqual(plan.block.affinity, node);
      const r = assignInBlock(
        plan.block,
        todo.map((handle) => ({ handle })),
      );
      assert.ok(r.assigned.length > 0, `plan ${plan.kind} gave nothing`);
      this.blocks.set(r.spec.cidr, r.spec);
      for (const a of r.assigned) this.held.set(a.handle, node);
      todo = r.unassigned.map((u) => u.handle);
    }
    return { exhausted: false };
  }

  release(handle: string): void {
    for (const [cidr, b] of this.blocks) this.blocks.set(cidr, release(b, handle).spec);
    this.held.delete(handle);
  }
}

describe("ipam world properties", () => {
  it("no address twice, all inside block and pool, blocks disjoint, limits kept", () => {
    const world = fc.record({
      v6: fc.boolean(),
      poolBits: fc.integer({ min: 0, max: 4 }),
      blockBits: fc.integer({ min: 0, max: 4 }),
      strictAffinity: fc.boolean(),
      maxBlocksPerNode: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
      ops: fc.array(
        fc.oneof(
          fc.record({ node: fc.integer({ min: 0, max: 3 }), n: fc.integer({ min: 1, max: 9 }) }),
          fc.record({ release: fc.nat() }),
        ),
        { maxLength: 40 },
      ),
    });
    fc.assert(
      fc.property(world, (w) => {
        const blockSize = (w.v6 ? 128 : 32) - w.blockBits;
        const prefix = blockSize - w.poolBits;
        const cidr = w.v6 ? `fd00:5::/${prefix}` : `10.5.0.0/${prefix}`;
        const spec = {
          cidr,
          blockSize,
          strictAffinity: w.strictAffinity,
          maxBlocksPerNode: w.maxBlocksPerNode,
        };
        const pool = parsePool({ name: "p", spec });
        const sim = new World([{ name: "p", spec }], w.v6 ? 6 : 4);
        let next = 0;
        for (const op of w.ops) {
          if ("release" in op) {
            const handles = [...sim.held.keys()];
            if (handles.length > 0) sim.release(handles[op.release % handles.length]!);
            continue;
          }
          const handles = Array.from({ length: op.n }, () => `h${next++}`);
          const { exhausted } = sim.assign(`n${op.node}`, handles);
          if (exhausted) {
            const blocks = [...sim.blocks.values()];
            const mine = blocks.filter((b) => b.affinity === `n${op.node}`);
            // Exhaustion is real: the node's blocks are full, and it may not claim or borrow.
            for (const b of mine) assert.equal(b.allocations.length, pool.blockAddresses);
            const capped = w.maxBlocksPerNode !== undefined && mine.length >= w.maxBlocksPerNode;
            if (!capped) assert.equal(BigInt(blocks.length), blockCount(pool));
            if (!w.strictAffinity) {
              for (const b of blocks) assert.equal(b.allocations.length, pool.blockAddresses);
            }
          }
        }
        const blocks = [...sim.blocks.values()];
        const ips = new Set<string>();
        let total = 0;
        for (const b of blocks) {
          assert.notEqual(blockIndexOf(pool, b.cidr), undefined, `${b.cidr} is not a block of ${cidr}`);
          assertBlockSane(b);
          const c = parseCidr(b.cidr);
          for (const a of b.allocations) {
            const ip = formatIP(c.family, c.base + BigInt(a.ordinal));
            assert.ok(poolContains(pool, ip));
            ips.add(ip);
            total++;
          }
        }
        assert.equal(ips.size, total, "an address is held twice");
        assert.equal(total, sim.held.size, "blocks and holders disagree");
        for (let i = 0; i < blocks.length; i++) {
          for (let j = i + 1; j < blocks.length; j++) {
            assert.ok(!cidrsOverlap(parseCidr(blocks[i]!.cidr), parseCidr(blocks[j]!.cidr)));
          }
        }
        if (w.maxBlocksPerNode !== undefined) {
          for (let n = 0; n < 4; n++) {
            assert.ok(blocks.filter((b) => b.affinity === `n${n}`).length <= w.maxBlocksPerNode);
          }
        }
        if (w.strictAffinity) {
          for (const b of blocks)
            for (const a of b.allocations) assert.equal(sim.held.get(a.handle), b.affinity);
        }
      }),
      { numRuns: 200 },
    );
  });
});
