import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  canonicalCidr,
  cidrContains,
  cidrsOverlap,
  formatIP,
  isIpamError,
  parseCidr,
  parseIP,
  tryParseCidr,
  tryParseIP,
} from "./index.js";

describe("ipam addresses", () => {
  it("parses and formats IPv4 canonically", () => {
    const a = parseIP("10.244.3.64");
    assert.equal(a.family, 4);
    assert.equal(a.value, (10n << 24n) | (244n << 16n) | (3n << 8n) | 64n);
    assert.equal(formatIP(4, a.value), "10.244.3.64");
    assert.equal(formatIP(4, 0n), "0.0.0.0");
    assert.equal(formatIP(4, 0xffffffffn), "255.255.255.255");
  });

  it("refuses ambiguous or malformed IPv4", () => {
    for (const s of [
      "010.1.1.1",
      "1.1.1",
      "256.1.1.1",
      " 1.1.1.1",
      "1.1.1.1 ",
      "1.1.1.1/32",
      "",
      "a.b.c.d",
    ]) {
      assert.equal(tryParseIP(s), undefined, s);
    }
    assert.throws(
      () => parseIP("1.2.3"),
      (e) => isIpamError(e, "InvalidAddress") && /1\.2\.3/.test(e.message),
    );
  });

  it("formats IPv6 per RFC 5952", () => {
    const cases: Array<[string, string]> = [
      ["FD00:0:0:0:0:0:0:1", "fd00::1"],
      ["fd00:10:244:0:0:0:0:0", "fd00:10:244::"],
      ["0:0:0:0:0:0:0:0", "::"],
      ["0:0:0:0:0:0:0:1", "::1"],
      ["1:0:0:1:0:0:0:1", "1:0:0:1::1"],
      ["1:0:0:2:2:0:0:1", "1::2:2:0:0:1"],
      ["1:0:1:1:1:1:1:1", "1:0:1:1:1:1:1:1"],
      ["2001:db8::ff00:42:8329", "2001:db8::ff00:42:8329"],
    ];
    for (const [input, want] of cases) {
      const a = parseIP(input);
      assert.equal(a.family, 6);
      assert.equal(formatIP(6, a.value), want, input);
    }
  });

  it("refuses IPv6 zone ids and garbage", () => {
    for (const s of ["fe80::1%eth0", "1::2::3", "fd00::g", ":::"]) assert.equal(tryParseIP(s), undefined, s);
  });

  it("parses CIDRs strictly unless told otherwise", () => {
    assert.deepEqual(parseCidr("10.244.0.0/16"), { family: 4, base: 0x0af40000n, prefix: 16 });
    assert.equal(tryParseCidr("10.244.0.1/16"), undefined);
    assert.deepEqual(tryParseCidr("10.244.0.1/16", false), { family: 4, base: 0x0af40000n, prefix: 16 });
    assert.throws(() => parseCidr("10.244.0.1/16"), /host bits set \(did you mean 10\.244\.0\.0\/16\?\)/);
    for (const s of ["10.0.0.0/33", "10.0.0.0/08", "10.0.0.0", "fd00::/129", "10.0.0.0/-1"]) {
      assert.equal(tryParseCidr(s), undefined, s);
    }
    assert.equal(canonicalCidr("FD00:0:0::/64"), "fd00::/64");
  });

  it("contains and overlaps respect family and bounds", () => {
    const net = parseCidr("10.0.0.0/30");
    assert.ok(cidrContains(net, parseIP("10.0.0.0")));
    assert.ok(cidrContains(net, parseIP("10.0.0.3")));
    assert.ok(!cidrContains(net, parseIP("10.0.0.4")));
    assert.ok(!cidrContains(parseCidr("::/0"), parseIP("10.0.0.1")));
    assert.ok(cidrsOverlap(parseCidr("10.0.0.0/8"), parseCidr("10.1.0.0/16")));
    assert.ok(!cidrsOverlap(parseCidr("10.0.0.0/24"), parseCidr("10.0.1.0/24")));
    assert.ok(!cidrsOverlap(parseCidr("0.0.0.0/0"), parseCidr("::/0")));
  });
});
