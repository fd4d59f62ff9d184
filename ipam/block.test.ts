import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPAMBlockSpec } from "../api/ipamblock.js";
import {
  addressAt,
  assertBlock,
  assignInBlock,
  blockAddressCount,
  checkBlock,
  findHandle,
  freeCount,
  isEmpty,
  isEmptyOfPods,
  isIpamError,
  isReservedHandle,
  newBlockSpec,
  ordinalOf,
  release,
  releaseIfSequence,
  usedCount,
  vtepHandle,
} from "./index.js";

const req = (n: number, prefix = "h") => Array.from({ length: n }, (_, i) => ({ handle: `${prefix}${i}` }));

describe("ipam block allocation", () => {
  it("hands out every address, .0 and the last included, in order", () => {
    const b = newBlockSpec("10.244.3.64/26", "p", "n1");
    const r = assignInBlock(b, req(64));
    assert.equal(r.assigned.length, 64);
    assert.deepEqual(r.unassigned, []);
    assert.equal(r.assigned[0]!.ip, "10.244.3.64");
    assert.equal(r.assigned[63]!.ip, "10.244.3.127");
    assert.equal(new Set(r.assigned.map((a) => a.ip)).size, 64);
    assert.equal(freeCount(r.spec), 0);
    assert.equal(usedCount(r.spec), 64);
    assert.equal(r.spec.sequence, 64);
    assert.deepEqual(
      r.assigned.map((a) => a.sequence),
      Array.from({ length: 64 }, (_, i) => i + 1),
    );
    assert.deepEqual(checkBlock(r.spec), []);
  });

  it("does not mutate its input and reports changed", () => {
    const b = newBlockSpec("10.0.0.0/30", "p", "n1");
    const snapshot = structuredClone(b);
    const r = assignInBlock(b, [{ handle: "a", namespace: "ns", pod: "pod-a" }]);
    assert.deepEqual(b, snapshot);
    assert.ok(r.changed);
    assert.deepEqual(r.spec.allocations, [
      { ordinal: 0, handle: "a", namespace: "ns", pod: "pod-a", sequence: 1 },
    ]);
  });

  it("is idempotent per handle", () => {
    const b = assignInBlock(newBlockSpec("10.0.0.0/30", "p", "n1"), [{ handle: "a" }]).spec;
    const again = assignInBlock(b, [{ handle: "a" }]);
    assert.equal(again.changed, false);
    assert.equal(again.spec, b);
    assert.equal(again.assigned[0]!.ip, "10.0.0.0");
    assert.equal(again.assigned[0]!.existing, true);
    assert.equal(again.spec.sequence, 1);
    const dup = assignInBlock(newBlockSpec("10.0.0.0/30", "p", "n1"), [{ handle: "x" }, { handle: "x" }]);
    assert.equal(dup.spec.allocations.length, 1);
    assert.equal(dup.assigned[0]!.ip, dup.assigned[1]!.ip);
  });

  it("returns what does not fit as unassigned", () => {
    const b = assignInBlock(newBlockSpec("10.0.0.0/30", "p", "n1"), req(3)).spec;
    const r = assignInBlock(b, [{ handle: "h0" }, { handle: "new1" }, { handle: "new2" }]);
    assert.equal(r.assigned.length, 2);
    assert.equal(r.assigned[0]!.existing, true);
    assert.equal(r.assigned[1]!.ip, "10.0.0.3");
    assert.deepEqual(r.unassigned, [{ handle: "new2" }]);
    const full = assignInBlock(r.spec, [{ handle: "z" }]);
    assert.equal(full.changed, false);
    assert.deepEqual(full.unassigned, [{ handle: "z" }]);
  });

  it("releases by handle, idempotently, and delays reuse of a freed address", () => {
    let b = assignInBlock(newBlockSpec("10.0.0.0/29", "p", "n1"), req(4)).spec;
    const r = release(b, "h1");
    assert.ok(r.changed);
    assert.deepEqual(
      r.released.map((a) => a.ip),
      ["10.0.0.1"],
    );
    assert.equal(release(r.spec, "h1").changed, false);
    assert.equal(release(r.spec, "h1").spec, r.spec);
    b = r.spec;
    // The cursor is past ordinal 3: 4..7 come first, then the freed .1.
    const next = assignInBlock(b, req(5, "n"));
    assert.deepEqual(
      next.assigned.map((a) => a.ip),
      ["10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.1"],
    );
  });

  it("refuses a stale release after the address was reused", () => {
    let b = assignInBlock(newBlockSpec("10.0.0.0/30", "p", "n1"), [{ handle: "a" }]).spec;
    const seen = b.allocations[0]!;
    b = release(b, "a").spec;
    b = assignInBlock(b, req(4, "x")).spec;
    // Address of "a" (ordinal 0) now belongs to someone else with a newer sequence.
    assert.equal(releaseIfSequence(b, "a", seen.ordinal, seen.sequence).changed, false);
    const holder = b.allocations.find((a) => a.ordinal === 0)!;
    assert.equal(releaseIfSequence(b, holder.handle, 0, seen.sequence).changed, false);
    const ok = releaseIfSequence(b, holder.handle, 0, holder.sequence);
    assert.ok(ok.changed);
    assert.equal(ok.released[0]!.ip, "10.0.0.0");
  });

  it("tells empty from empty-of-pods", () => {
    const b = newBlockSpec("10.0.0.0/26", "p", "n1");
    assert.ok(isEmpty(b) && isEmptyOfPods(b));
    const v = assignInBlock(b, [{ handle: vtepHandle("n1") }]).spec;
    assert.ok(isReservedHandle(vtepHandle("n1")));
    assert.ok(!isEmpty(v));
    assert.ok(isEmptyOfPods(v));
    const p = assignInBlock(v, [{ handle: "sandbox.eth0" }]).spec;
    assert.ok(!isEmptyOfPods(p));
  });

  it("maps ordinals and addresses both ways (IPv6 /122)", () => {
    const b = newBlockSpec("fd00:10:244::40/122", "p6", "n1");
    assert.equal(blockAddressCount(b), 64);
    assert.equal(addressAt(b, 0), "fd00:10:244::40");
    assert.equal(addressAt(b, 63), "fd00:10:244::7f");
    assert.equal(ordinalOf(b, "fd00:10:244::7f"), 63);
    assert.equal(ordinalOf(b, "fd00:10:244::80"), undefined);
    assert.equal(ordinalOf(b, "10.0.0.1"), undefined);
    assert.throws(() => addressAt(b, 64), RangeError);
    const r = assignInBlock(b, req(2));
    assert.deepEqual(
      r.assigned.map((a) => a.ip),
      ["fd00:10:244::40", "fd00:10:244::41"],
    );
  });

  it("finds a handle across blocks", () => {
    const a = assignInBlock(newBlockSpec("10.0.0.0/30", "p", "n1"), [{ handle: "x" }]).spec;
    const b = assignInBlock(newBlockSpec("fd00::/126", "p6", "n1"), [{ handle: "y" }, { handle: "x" }]).spec;
    const found = findHandle([a, b], "x");
    assert.deepEqual(
      found.map((f) => [f.cidr, f.ip]),
      [
        ["10.0.0.0/30", "10.0.0.0"],
        ["fd00::/126", "fd00::1"],
      ],
    );
  });

  it("checkBlock reports corrupt blocks", () => {
    const bad: IPAMBlockSpec = {
      cidr: "10.0.0.0/30",
      pool: "p",
      affinity: "n1",
      sequence: 2,
      allocations: [
        { ordinal: 0, handle: "a", sequence: 1 },
        { ordinal: 0, handle: "b", sequence: 2 },
        { ordinal: 1, handle: "a", sequence: 2 },
        { ordinal: 4, handle: "c", sequence: 2 },
        { ordinal: 2, handle: "d", sequence: 9 },
      ],
    };
    const errs = checkBlock(bad);
    assert.ok(errs.some((e) => /10\.0\.0\.0 is held by both a and b/.test(e)));
    assert.ok(errs.some((e) => /handle a holds both 10\.0\.0\.0 and 10\.0\.0\.1/.test(e)));
    assert.ok(errs.some((e) => /ordinal 4 \(c\) is outside/.test(e)));
    assert.ok(errs.some((e) => /sequence 9 > block sequence 2/.test(e)));
    assert.throws(
      () => assertBlock(bad),
      (e) => isIpamError(e, "InvalidBlock"),
    );
    assert.deepEqual(checkBlock({ ...bad, cidr: "10.0.0.1/30", allocations: [] }).length, 1);
  });
});
