import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPAMBlockSpec } from "../api/ipamblock.js";
import type { IPPoolSpec } from "../api/ippool.js";
import {
  assignInBlock,
  blockIndexOf,
  matchingFamilies,
  newBlockSpec,
  type Plan,
  type PlanInput,
  type PoolRef,
  parsePool,
  planAssignment,
  planDualStack,
  planJoin,
  vtepHandle,
} from "./index.js";

const ref = (name: string, cidr: string, extra: Partial<IPPoolSpec> = {}): PoolRef => ({
  name,
  spec: { cidr, ...extra },
});
const node = { name: "n1", labels: { zone: "a" } };

function full(cidr: string, pool: string, affinity: string): IPAMBlockSpec {
  const b = newBlockSpec(cidr, pool, affinity);
  const size = 2 ** (32 - Number(cidr.split("/")[1]));
  return assignInBlock(
    b,
    Array.from({ length: size }, (_, i) => ({ handle: `${affinity}-${i}` })),
  ).spec;
}

function plan(over: Partial<PlanInput> & Pick<PlanInput, "pools">): Plan {
  return planAssignment({ family: 4, node, ownBlocks: [], claimed: new Set(), ...over });
}

function errorOf(p: Plan) {
  assert.equal(p.kind, "error", JSON.stringify(p));
  return (p as Extract<Plan, { kind: "error" }>).error;
}

describe("ipam planning", () => {
  it("uses an own block with room before claiming", () => {
    const pools = [ref("p", "10.0.0.0/24")];
    const own = assignInBlock(newBlockSpec("10.0.0.64/26", "p", "n1"), [{ handle: "a" }]).spec;
    const p = plan({ pools, ownBlocks: [own], claimed: new Set([own.cidr]) });
    assert.equal(p.kind, "useBlock");
    assert.equal((p as Extract<Plan, { kind: "useBlock" }>).block, own);
  });

  it("prefers an own block with room for the whole group", () => {
    const pools = [ref("p", "10.0.0.0/24", { blockSize: 28 })];
    const almost = assignInBlock(
      newBlockSpec("10.0.0.0/28", "p", "n1"),
      Array.from({ length: 14 }, (_, i) => ({ handle: `x${i}` })),
    ).spec;
    const roomy = newBlockSpec("10.0.0.16/28", "p", "n1");
    const p = plan({ pools, ownBlocks: [almost, roomy], claimed: new Set(), count: 5 });
    assert.equal(p.kind === "useBlock" && p.block.cidr, "10.0.0.16/28");
    const q = plan({ pools, ownBlocks: [almost, roomy], claimed: new Set(), count: 1 });
    assert.equal(q.kind === "useBlock" && q.block.cidr, "10.0.0.0/28");
  });

  it("claims a free block of the pool when own blocks are full", () => {
    const pools = [ref("p", "10.0.0.0/24")];
    const own = full("10.0.0.0/26", "p", "n1");
    const other = full("10.0.0.64/26", "p", "n2");
    const p = plan({ pools, ownBlocks: [own], claimed: new Map([[other.cidr, "n2"]]) });
    assert.equal(p.kind, "claim");
    const c = p as Extract<Plan, { kind: "claim" }>;
    assert.ok(["10.0.0.128/26", "10.0.0.192/26"].includes(c.cidr));
    assert.deepEqual(c.block, { cidr: c.cidr, pool: "p", affinity: "n1", allocations: [], sequence: 0 });
  });

  it("gives a typed exhaustion error naming the pool and the node", () => {
    const pools = [ref("tiny", "10.9.0.0/25")];
    const own = full("10.9.0.0/26", "tiny", "n1");
    const other = full("10.9.0.64/26", "tiny", "n2");
    const e = errorOf(plan({ pools, ownBlocks: [own], claimed: new Set([other.cidr]) }));
    assert.equal(e.code, "Exhausted");
    assert.deepEqual(e.pools, ["tiny"]);
    assert.equal(e.node, "n1");
    assert.match(e.message, /no free IPv4 address for node n1 in pool\(s\) tiny/);
    assert.match(e.message, /all 2 \/26 blocks are claimed/);
    assert.match(e.message, /strictAffinity is true for tiny/);
  });

  it("respects maxBlocksPerNode", () => {
    const pools = [ref("p", "10.0.0.0/16", { maxBlocksPerNode: 2 })];
    const own = [full("10.0.0.0/26", "p", "n1"), full("10.0.0.64/26", "p", "n1")];
    const e = errorOf(plan({ pools, ownBlocks: own, claimed: new Set() }));
    assert.equal(e.code, "Exhausted");
    assert.match(e.message, /p: node holds maxBlocksPerNode=2 blocks, all full/);
    const one = plan({ pools, ownBlocks: own.slice(0, 1), claimed: new Set() });
    assert.equal(one.kind, "claim");
  });

  it("borrows only when strictAffinity is false", () => {
    const other = assignInBlock(newBlockSpec("10.9.0.64/26", "p", "n2"), [{ handle: "z" }]).spec;
    const own = full("10.9.0.0/26", "p", "n1");
    const input = { ownBlocks: [own], claimed: new Set([other.cidr]), borrowable: [other] };
    const strict = errorOf(plan({ pools: [ref("p", "10.9.0.0/25")], ...input }));
    assert.equal(strict.code, "Exhausted");
    const loose = plan({ pools: [ref("p", "10.9.0.0/25", { strictAffinity: false })], ...input });
    assert.equal(loose.kind, "borrow");
    assert.equal((loose as Extract<Plan, { kind: "borrow" }>).block, other);
    // Borrowing comes after claiming: with a free block left, the node claims instead.
    const roomy = plan({ pools: [ref("p", "10.9.0.0/24", { strictAffinity: false })], ...input });
    assert.equal(roomy.kind, "claim");
    // maxBlocksPerNode reached with strictAffinity=false: borrow.
    const capped = plan({
      pools: [ref("p", "10.9.0.0/24", { strictAffinity: false, maxBlocksPerNode: 1 })],
      ...input,
    });
    assert.equal(capped.kind, "borrow");
    // Nothing to borrow: exhaustion says so.
    const e = errorOf(
      plan({
        pools: [ref("p", "10.9.0.0/25", { strictAffinity: false })],
        ...input,
        borrowable: [full("10.9.0.64/26", "p", "n2")],
      }),
    );
    assert.match(e.message, /no other node's block has a free address to borrow/);
  });

  it("skips disabled, non-matching, invalid and other-family pools", () => {
    const pools = [
      ref("off", "10.1.0.0/16", { disabled: true }),
      ref("elsewhere", "10.2.0.0/16", { nodeSelector: { matchLabels: { zone: "b" } } }),
      ref("broken", "10.3.0.1/16"),
      ref("v6", "fd00::/64"),
    ];
    const e = errorOf(plan({ pools }));
    assert.equal(e.code, "NoMatchingPool");
    assert.match(e.message, /no enabled IPv4 pool gives addresses to node n1/);
    assert.match(e.message, /off: disabled/);
    assert.match(e.message, /elsewhere: nodeSelector does not match node n1/);
    assert.match(e.message, /broken: IPPool broken is invalid/);
    const ok = plan({
      pools: [...pools, ref("here", "10.4.0.0/16", { nodeSelector: { matchLabels: { zone: "a" } } })],
    });
    assert.equal(ok.kind === "claim" && ok.pool, "here");
  });

  it("does not use own blocks of a disabled pool", () => {
    const own = newBlockSpec("10.1.0.0/26", "off", "n1");
    const e = errorOf(plan({ pools: [ref("off", "10.1.0.0/16", { disabled: true })], ownBlocks: [own] }));
    assert.equal(e.code, "NoMatchingPool");
  });

  it("NodeSubnet: one block per node, never a second, claimed only at join", () => {
    const pools = [ref("flannel", "10.244.0.0/16", { allocation: "NodeSubnet", blockSize: 24 })];
    const missing = errorOf(plan({ pools }));
    assert.equal(missing.code, "NodeSubnetMissing");
    assert.match(missing.message, /node n1 has no IPv4 subnet in pool\(s\) flannel/);

    const join = planJoin({ pools, node, ownBlocks: [], claimed: new Set() });
    assert.deepEqual(join.errors, []);
    assert.equal(join.claims.length, 1);
    const subnet = join.claims[0]!;
    assert.match(subnet.cidr, /^10\.244\.\d+\.0\/24$/);
    assert.equal(subnet.block.affinity, "n1");
    assert.deepEqual(planJoin({ pools, node, ownBlocks: [subnet.block], claimed: new Set() }).claims, []);

    const use = plan({ pools, ownBlocks: [subnet.block] });
    assert.equal(use.kind, "useBlock");
    const filled = assignInBlock(
      subnet.block,
      Array.from({ length: 256 }, (_, i) => ({ handle: `h${i}` })),
    ).spec;
    const e = errorOf(plan({ pools, ownBlocks: [filled] }));
    assert.equal(e.code, "Exhausted");
    assert.match(e.message, /flannel: node subnet 10\.244\.\d+\.0\/24 is full/);
    // Even the controller's own planning never gives a node a second subnet.
    assert.equal(errorOf(plan({ pools, ownBlocks: [filled], claimNodeSubnet: true })).code, "Exhausted");
  });

  it("planJoin claims one Blocks block per family, distinct per node, and the VTEP fits in it", () => {
    const pools = [ref("v4", "10.0.0.0/16"), ref("v4b", "10.1.0.0/16"), ref("v6", "fd00:10::/64")];
    const j = planJoin({ pools, node, ownBlocks: [], claimed: new Set() });
    assert.deepEqual(
      j.claims.map((c) => c.pool),
      ["v4", "v6"],
    );
    const withVtep = assignInBlock(j.claims[0]!.block, [{ handle: vtepHandle("n1") }]);
    assert.equal(withVtep.spec.allocations[0]!.handle, "vtep.n1");
    const again = planJoin({ pools, node, ownBlocks: j.claims.map((c) => c.block), claimed: new Set() });
    assert.deepEqual(again.claims, []);
    const j2 = planJoin({
      pools,
      node: { name: "n2" },
      ownBlocks: [],
      claimed: new Set(j.claims.map((c) => c.cidr)),
    });
    for (const c of j2.claims) assert.ok(!j.claims.some((d) => d.cidr === c.cidr));
  });

  it("planJoin: a fixed subnet (another program's lease) is claimed as it is, or reported, never replaced", () => {
    const pools = [ref("flannel", "10.244.0.0/16", { allocation: "NodeSubnet", blockSize: 24 })];
    const fixedSubnets = new Map([["flannel", "10.244.7.0/24"]]);
    const j = planJoin({ pools, node, ownBlocks: [], claimed: new Set(), fixedSubnets });
    assert.deepEqual(
      j.claims.map((c) => [c.cidr, c.block.affinity]),
      [["10.244.7.0/24", "n1"]],
    );
    const held = planJoin({ pools, node, ownBlocks: [], claimed: new Set(["10.244.7.0/24"]), fixedSubnets });
    assert.deepEqual(held.claims, [], "no second, different subnet for the node");
    assert.match(held.errors[0]!.message, /node n1 must keep subnet 10\.244\.7\.0\/24/);
    const outside = planJoin({
      pools,
      node,
      ownBlocks: [],
      claimed: new Set(),
      fixedSubnets: new Map([["flannel", "10.9.7.0/24"]]),
    });
    assert.deepEqual(outside.claims, []);
    assert.equal(outside.errors.length, 1);
    // Blocks no node may claim are simply part of `claimed`.
    const firstOnly = [ref("tiny", "10.5.0.0/23", { allocation: "NodeSubnet", blockSize: 24 })];
    const skip = planJoin({
      pools: firstOnly,
      node,
      ownBlocks: [],
      claimed: { has: (c) => c === "10.5.0.0/24" },
    });
    assert.deepEqual(
      skip.claims.map((c) => c.cidr),
      ["10.5.1.0/24"],
    );
  });

  it("planJoin reports an exhausted pool by name", () => {
    const pools = [ref("one", "10.0.0.0/26")];
    const j = planJoin({ pools, node, ownBlocks: [], claimed: new Set(["10.0.0.0/26"]) });
    assert.deepEqual(j.claims, []);
    assert.equal(j.errors.length, 1);
    assert.match(j.errors[0]!.message, /pool one has no free \/26 block for node n1/);
  });

  it("dual-stack: one plan per family that has a pool for the node", () => {
    const pools = [ref("v4", "10.0.0.0/16"), ref("v6", "fd00:10:244::/64")];
    assert.deepEqual(matchingFamilies(pools, node), [4, 6]);
    const d = planDualStack({ pools, node, ownBlocks: [], claimed: new Set() });
    assert.equal(d.kind, "plans");
    if (d.kind !== "plans") return;
    const p4 = d.plans[4];
    const p6 = d.plans[6];
    assert.equal(p4?.kind, "claim");
    assert.equal(p6?.kind, "claim");
    if (p4?.kind !== "claim" || p6?.kind !== "claim") return;
    assert.notEqual(blockIndexOf(parsePool(pools[0]!), p4.cidr), undefined);
    assert.notEqual(blockIndexOf(parsePool(pools[1]!), p6.cidr), undefined);
    const a4 = assignInBlock(p4.block, [{ handle: "pod.eth0" }]).assigned[0]!;
    const a6 = assignInBlock(p6.block, [{ handle: "pod.eth0" }]).assigned[0]!;
    assert.match(a4.ip, /^10\.0\./);
    assert.match(a6.ip, /^fd00:10:244:0:/);

    const v4only = planDualStack({ pools: pools.slice(0, 1), node, ownBlocks: [], claimed: new Set() });
    assert.deepEqual(Object.keys(v4only.kind === "plans" ? v4only.plans : {}), ["4"]);
    const none = planDualStack({
      pools: [ref("off", "10.0.0.0/16", { disabled: true })],
      node,
      ownBlocks: [],
      claimed: new Set(),
    });
    assert.equal(none.kind, "error");
    assert.match(
      none.kind === "error" ? none.error.message : "",
      /no enabled pool gives addresses to node n1 \(off: disabled\)/,
    );
  });

  it("IPv6 /64 pool with /122 blocks: claim, fill, claim again", () => {
    const pools = [ref("v6", "fd00:10:244::/64")];
    const first = planAssignment({ family: 6, pools, node, ownBlocks: [], claimed: new Set() });
    assert.equal(first.kind, "claim");
    if (first.kind !== "claim") return;
    assert.match(first.cidr, /^fd00:10:244:[0-9a-f:]+\/122$/);
    const filled = assignInBlock(
      first.block,
      Array.from({ length: 64 }, (_, i) => ({ handle: `h${i}` })),
    );
    assert.equal(new Set(filled.assigned.map((a) => a.ip)).size, 64);
    const second = planAssignment({ family: 6, pools, node, ownBlocks: [filled.spec], claimed: new Set() });
    assert.equal(second.kind, "claim");
    assert.notEqual(second.kind === "claim" && second.cidr, first.cidr);
  });

  it("uses pools in name order and falls through to the next pool", () => {
    const pools = [ref("b", "10.2.0.0/26"), ref("a", "10.1.0.0/26")];
    assert.equal(plan({ pools }).kind === "claim" && (plan({ pools }) as { pool: string }).pool, "a");
    const p = plan({ pools, ownBlocks: [full("10.1.0.0/26", "a", "n1")] });
    assert.equal(p.kind === "claim" && p.pool, "b");
  });
});
