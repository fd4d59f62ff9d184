import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPReservation } from "../api/index.js";
import { parseCidr } from "../net/index.js";
import {
  assignInBlock,
  exhaustionOutlook,
  fullyReserved,
  newBlockSpec,
  type Plan,
  parsePool,
  planAssignment,
  planJoin,
  poolUsage,
  reservationReport,
  reservedOrdinals,
  reservedSet,
} from "./index.js";

const reservation = (name: string, reservedCIDRs: string[]): IPReservation => ({
  apiVersion: "weft.dev/v1alpha1",
  kind: "IPReservation",
  metadata: { name },
  spec: { reservedCIDRs },
});

describe("reservations", () => {
  const set = reservedSet([reservation("r", ["10.0.0.2", "10.0.0.8/30", "10.0.1.0/24", "fd00::1"])]);

  it("cover ordinals of a block, and whole blocks", () => {
    assert.deepEqual(
      [...reservedOrdinals(set, { cidr: "10.0.0.0/28" })].sort((a, b) => a - b),
      [2, 8, 9, 10, 11],
    );
    assert.equal(reservedOrdinals(set, { cidr: "10.0.0.16/28" }).size, 0);
    assert.equal(fullyReserved(set, "10.0.1.64/26"), true);
    assert.equal(fullyReserved(set, "10.0.0.0/28"), false);
  });

  it("are skipped by assignment, and a block with only reserved room has none", () => {
    const reserved = reservedOrdinals(set, { cidr: "10.0.0.0/28" });
    const r = assignInBlock(
      newBlockSpec("10.0.0.0/28", "p", "n1"),
      Array.from({ length: 12 }, (_, i) => ({ handle: `h${i}` })),
      { reserved },
    );
    assert.equal(r.assigned.length, 11, "16 addresses, 5 reserved");
    assert.equal(r.unassigned.length, 1);
    assert.ok(r.spec.allocations.every((a) => !reserved.has(a.ordinal)));
    const pools = [{ name: "p", spec: { cidr: "10.0.0.0/23", blockSize: 28 } }];
    const p = planAssignment({
      family: 4,
      pools,
      node: { name: "n1" },
      ownBlocks: [r.spec],
      claimed: new Set([r.spec.cidr]),
      reserved: set,
    });
    assert.equal(p.kind, "claim", "the full block is passed over");
    const claim = p as Extract<Plan, { kind: "claim" }>;
    assert.ok(!fullyReserved(set, claim.cidr), `${claim.cidr} is reserved whole`);
    assert.ok(!claim.cidr.startsWith("10.0.1."), claim.cidr);
  });

  it("are never claimed whole at node join", () => {
    // The only free block of the pool is reserved whole: nothing to claim.
    const only = planJoin({
      pools: [{ name: "p", spec: { cidr: "10.0.1.0/27", blockSize: 28 } }],
      node: { name: "n1" },
      ownBlocks: [],
      claimed: new Set(),
      reserved: set,
    });
    assert.equal(only.claims.length, 0);
    assert.equal(only.errors[0]?.code, "Exhausted");
  });

  it("report what they reserve, what lies outside every pool and who holds reserved addresses", () => {
    const held = assignInBlock(newBlockSpec("10.0.0.0/28", "p", "n1"), [
      { handle: "a", namespace: "ns", pod: "x" },
      { handle: "b" },
      { handle: "c" },
    ]).spec;
    const rep = reservationReport(
      reservation("r", ["10.0.0.2", "10.0.0.0/29", "192.168.7.0/24"]),
      [parseCidr("10.0.0.0/24")],
      [held],
    );
    assert.equal(rep.reservedAddresses, 8n, "overlapping entries count once");
    assert.deepEqual(rep.outside, [{ index: 2, entry: "192.168.7.0/24" }]);
    assert.deepEqual(
      rep.inUse.map((u) => [u.ip, u.handle, u.node]),
      [
        ["10.0.0.0", "a", "n1"],
        ["10.0.0.1", "b", "n1"],
        ["10.0.0.2", "c", "n1"],
      ],
    );
  });
});

describe("exhaustion outlook", () => {
  const pool = parsePool({ name: "p", spec: { cidr: "10.0.0.0/24", blockSize: 28 } });
  const blocks = (n: number, used = 1) =>
    Array.from(
      { length: n },
      (_, i) =>
        assignInBlock(
          newBlockSpec(`10.0.0.${i * 16}/28`, "p", "n1"),
          Array.from({ length: used }, (_, j) => ({ handle: `h${i}-${j}` })),
        ).spec,
    );
  const now = new Date("2026-05-01T12:00:00Z");

  it("warns at the used-share threshold", () => {
    const o = exhaustionOutlook({ usage: poolUsage(pool, blocks(15)), blocksLastHour: 0, now });
    assert.equal(o.nearlyExhausted, true);
    assert.equal(o.reason, "BlocksNearlyUsed");
    assert.match(o.message, /15 of 16 blocks \(93\.7%\)/);
    const calm = exhaustionOutlook({ usage: poolUsage(pool, blocks(4)), blocksLastHour: 0, now });
    assert.equal(calm.nearlyExhausted, false);
    assert.equal(calm.blocksExhaustedAt, undefined);
  });

  it("warns when the free blocks last less than the horizon at the last hour's rate", () => {
    const o = exhaustionOutlook({ usage: poolUsage(pool, blocks(4)), blocksLastHour: 3, now });
    // 12 free blocks at 3 per hour: 4 hours
    assert.equal(o.hoursLeft, 4);
    assert.equal(o.reason, "ForecastExhaustion");
    assert.equal(o.blocksExhaustedAt?.toISOString(), "2026-05-01T16:00:00.000Z");
    const off = exhaustionOutlook({
      usage: poolUsage(pool, blocks(4)),
      blocksLastHour: 3,
      forecastHours: 0,
      now,
    });
    assert.equal(off.nearlyExhausted, false);
    const short = exhaustionOutlook({
      usage: poolUsage(pool, blocks(4)),
      blocksLastHour: 3,
      forecastHours: 2,
      usedPercent: 99,
      now,
    });
    assert.equal(short.nearlyExhausted, false, "4 hours left is beyond a 2-hour horizon");
  });
});
