import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPAMBlockSpec, IPPool, IPPoolSpec } from "../api/index.js";
import {
  assignAt,
  assignInBlock,
  borrowedAddresses,
  borrowersOf,
  type FixedInput,
  type FixedPlan,
  newBlockSpec,
  planFixed,
} from "./index.js";

const pool = (name: string, spec: IPPoolSpec): IPPool => ({
  apiVersion: "weft.dev/v1alpha1",
  kind: "IPPool",
  metadata: { name, creationTimestamp: "2026-01-01T00:00:00Z" },
  spec,
});

const POOLS = [
  pool("strict", { cidr: "10.1.0.0/24", blockSize: 28 }),
  pool("loose", { cidr: "10.2.0.0/24", blockSize: 28, strictAffinity: false }),
  pool("subnets", { cidr: "10.3.0.0/24", blockSize: 28, allocation: "NodeSubnet" }),
  pool("capped", { cidr: "10.4.0.0/24", blockSize: 28, maxBlocksPerNode: 1 }),
  pool("off", { cidr: "10.5.0.0/24", disabled: true }),
];

function plan(ip: string, blocks: IPAMBlockSpec[] = [], over: Partial<FixedInput> = {}): FixedPlan {
  const byCidr = new Map(blocks.map((b) => [b.cidr, b]));
  return planFixed({
    ip,
    source: "annotation weft.dev/ip-addresses of pod web/db-0",
    node: { name: "n1" },
    request: { handle: "sb1.eth0", namespace: "web", pod: "db-0" },
    pools: POOLS,
    block: (c) => byCidr.get(c),
    ownBlocks: blocks.filter((b) => b.affinity === "n1"),
    ...over,
  });
}

function errorOf(p: FixedPlan, code: string): string {
  assert.equal(p.kind, "error", JSON.stringify(p));
  const e = (p as Extract<FixedPlan, { kind: "error" }>).error;
  assert.equal(e.code, code, e.message);
  assert.match(e.message, /^annotation weft\.dev\/ip-addresses of pod web\/db-0: /);
  return e.message;
}

describe("fixed addresses", () => {
  it("claims the block that holds a free address, with the address in the same write", () => {
    const p = plan("10.1.0.37");
    assert.equal(p.kind, "claim");
    const c = p as Extract<FixedPlan, { kind: "claim" }>;
    assert.equal(c.cidr, "10.1.0.32/28");
    assert.equal(c.block.affinity, "n1");
    assert.equal(c.ordinal, 5);
  });

  it("takes it from the node's own block; the same handle again costs nothing", () => {
    const own = newBlockSpec("10.1.0.32/28", "strict", "n1");
    const p = plan("10.1.0.37", [own]);
    assert.equal(p.kind, "assign");
    const r = assignAt(own, 5, { handle: "sb1.eth0", namespace: "web", pod: "db-0" });
    assert.equal(r.kind, "assigned");
    const after = (r as Extract<typeof r, { kind: "assigned" }>).result.spec;
    assert.equal(plan("10.1.0.37", [after]).kind, "held");
  });

  it("names the holder of an address in use", () => {
    const own = assignAt(newBlockSpec("10.1.0.32/28", "strict", "n1"), 5, {
      handle: "other.eth0",
      namespace: "web",
      pod: "cache-1",
    });
    const spec = (own as Extract<typeof own, { kind: "assigned" }>).result.spec;
    const msg = errorOf(plan("10.1.0.37", [spec]), "AddressInUse");
    assert.match(msg, /10\.1\.0\.37 is in use by pod web\/cache-1 \(handle other\.eth0, node n1\)/);
  });

  it("lets a later sandbox of the same pod take over its own address (a restart whose release never came)", () => {
    const held = assignAt(newBlockSpec("10.1.0.32/28", "strict", "n1"), 5, {
      handle: "old.eth0",
      namespace: "web",
      pod: "db-0",
    });
    const spec = (held as Extract<typeof held, { kind: "assigned" }>).result.spec;
    const p = plan("10.1.0.37", [spec]);
    assert.equal(p.kind, "assign");
    assert.equal((p as Extract<FixedPlan, { kind: "assign" }>).takeover, "old.eth0");
    const r = assignAt(
      spec,
      5,
      { handle: "sb1.eth0", namespace: "web", pod: "db-0" },
      { takeover: "old.eth0" },
    );
    const after = (r as Extract<typeof r, { kind: "assigned" }>).result.spec;
    assert.deepEqual(
      after.allocations.map((a) => a.handle),
      ["sb1.eth0"],
    );
  });

  it("refuses another node's block unless the pool allows borrowing, then borrows it for this node", () => {
    const theirs = newBlockSpec("10.1.0.32/28", "strict", "n2");
    assert.match(
      errorOf(plan("10.1.0.37", [theirs]), "AddressUnavailable"),
      /lies in block 10\.1\.0\.32\/28 of node n2; node n1 may not take it: pool strict has strictAffinity: true/,
    );
    const lender = newBlockSpec("10.2.0.32/28", "loose", "n2");
    const p = plan("10.2.0.37", [lender]);
    assert.equal(p.kind, "assign");
    assert.equal((p as Extract<FixedPlan, { kind: "assign" }>).borrower, "n1");
    const r = assignAt(lender, 5, { handle: "sb1.eth0" }, { borrower: "n1" });
    const after = (r as Extract<typeof r, { kind: "assigned" }>).result.spec;
    assert.equal(after.allocations[0]?.node, "n1");
    assert.deepEqual([...borrowersOf(after)], ["n1"]);
    assert.deepEqual(borrowedAddresses([after], "n1"), [{ cidr: "10.2.0.37/32", pool: "loose" }]);
    assert.deepEqual(borrowedAddresses([after], "n2"), []);
  });

  it("keeps NodeSubnet pools per node and respects maxBlocksPerNode", () => {
    assert.match(
      errorOf(plan("10.3.0.37"), "AddressUnavailable"),
      /lies outside the subnet of node n1 \(none yet\); pool subnets gives every node one subnet/,
    );
    const mine = newBlockSpec("10.4.0.0/28", "capped", "n1");
    assert.match(
      errorOf(plan("10.4.0.37", [mine]), "AddressUnavailable"),
      /maxBlocksPerNode=1 blocks of pool capped/,
    );
  });

  it("refuses addresses outside every pool, in disabled pools, or outside the pools the pod names", () => {
    assert.match(
      errorOf(plan("192.0.2.1"), "AddressOutsidePools"),
      /192\.0\.2\.1 lies outside every IPv4 IPPool/,
    );
    assert.match(errorOf(plan("10.5.0.9"), "PoolNotUsable"), /pool off is disabled/);
    const choice = { names: ["loose"], source: "annotation weft.dev/ipv4pools of pod web/db-0" };
    assert.match(
      errorOf(plan("10.1.0.37", [], { choice }), "PoolNotUsable"),
      /10\.1\.0\.37 lies in pool strict, but annotation weft\.dev\/ipv4pools of pod web\/db-0 names only loose/,
    );
  });

  it("assignAt refuses an ordinal held by another handle and never moves the holder", () => {
    const b = assignInBlock(newBlockSpec("10.1.0.0/28", "strict", "n1"), [{ handle: "a" }]).spec;
    const r = assignAt(b, 0, { handle: "b" });
    assert.equal(r.kind, "held");
    assert.equal((r as Extract<typeof r, { kind: "held" }>).holder.handle, "a");
  });
});
