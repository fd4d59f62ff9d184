import assert from "node:assert/strict";
import { isIP } from "node:net";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  AddressError,
  canonicalCidr,
  canonicalIP,
  cidrContains,
  cidrsOverlap,
  compareIP,
  familyFromName,
  familyOfValid,
  familyToName,
  formatCidr,
  formatIP,
  isCanonicalIPv4Cidr,
  isFamilyName,
  parseCidr,
  parseIP,
  tryParseCidr,
  tryParseIP,
} from "./index.js";

describe("IP addresses", () => {
  it("parses and formats IPv4 canonically, refusing ambiguous text", () => {
    const a = parseIP("10.244.3.64");
    assert.deepEqual(a, { family: 4, value: (10n << 24n) | (244n << 16n) | (3n << 8n) | 64n });
    assert.equal(formatIP(4, a.value), "10.244.3.64");
    assert.equal(formatIP(4, 0xffffffffn), "255.255.255.255");
    for (const s of ["010.1.1.1", "1.1.1", "256.1.1.1", " 1.1.1.1", "1.1.1.1 ", "1.1.1.1/32", "", "a.b.c.d"])
      assert.equal(tryParseIP(s), undefined, s);
    assert.equal(tryParseIP(42), undefined);
    assert.throws(
      () => parseIP("1.2.3"),
      (e) => e instanceof AddressError && e.code === "InvalidAddress",
    );
  });

  it("parses IPv6 in every RFC 4291 spelling and prints RFC 5952", () => {
    const cases: Array<[string, string]> = [
      ["FD00:0:0:0:0:0:0:1", "fd00::1"],
      ["0:0:0:0:0:0:0:0", "::"],
      ["1:0:0:2:2:0:0:1", "1::2:2:0:0:1"],
      ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
      ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
      ["::ffff:1.2.3.4", "::ffff:102:304"],
      ["1:2:3:4:5::1.2.3.4", "1:2:3:4:5:0:102:304"],
      ["0001::", "1::"],
    ];
    for (const [input, want] of cases) assert.equal(canonicalIP(input), want, input);
    for (const s of [
      "fe80::1%eth0",
      "1::2::3",
      "fd00::g",
      ":::",
      "1:",
      ":1::",
      "1::2:",
      "00001::",
      "1:2:3:4:5:6:7:8:9",
    ])
      assert.equal(tryParseIP(s), undefined, s);
    for (const s of ["1:2:3:4:5:6::1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.04", "::ffff:1.2.3"])
      assert.equal(tryParseIP(s), undefined, s);
  });

  it("accepts exactly what node:net accepts, zone ids aside, and prints what it parsed", () => {
    const text = fc
      .array(fc.constantFrom(..."0123456789abcdefABCDEF:.", "::", "ffff", "255", "1.2.3.4"), {
        maxLength: 14,
      })
      .map((parts) => parts.join(""));
    const groups = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 });
    fc.assert(
      fc.property(text, (s) => {
        const a = tryParseIP(s);
        assert.equal(a === undefined ? 0 : a.family, isIP(s), s);
        if (a) assert.deepEqual(parseIP(formatIP(a.family, a.value)), a);
      }),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(groups, (g) => {
        const a = parseIP(g.map((x) => x.toString(16)).join(":"));
        assert.equal(
          a.value,
          g.reduce((v, x) => (v << 16n) | BigInt(x), 0n),
        );
        assert.equal(canonicalIP(formatIP(6, a.value)), formatIP(6, a.value));
      }),
    );
  });

  it("orders IPv4 before IPv6, then numerically", () => {
    assert.ok(compareIP("10.0.0.9", "10.0.0.10") < 0);
    assert.ok(compareIP("fd00::1", "10.0.0.1") > 0);
    assert.equal(compareIP("fd00::1", "FD00:0::1"), 0);
  });
});

describe("CIDRs", () => {
  it("parses strictly unless told otherwise, and says what is wrong", () => {
    assert.deepEqual(parseCidr("10.244.0.0/16"), { family: 4, base: 0x0af40000n, prefix: 16 });
    assert.equal(tryParseCidr("10.244.0.1/16"), undefined);
    assert.deepEqual(tryParseCidr("10.244.0.1/16", false), { family: 4, base: 0x0af40000n, prefix: 16 });
    assert.throws(() => parseCidr("10.244.0.1/16"), /host bits set \(did you mean 10\.244\.0\.0\/16\?\)/);
    assert.throws(() => parseCidr("10.244.0.0/33"), /bad prefix length/);
    assert.throws(() => parseCidr("10.244.300.0/24"), /not an IP address/);
    assert.throws(() => parseCidr("10.244.0.0"), /not an IPv4 or IPv6 CIDR/);
    for (const s of ["10.0.0.0/08", "fd00::/129", "10.0.0.0/-1", "10.0.0.0/"])
      assert.equal(tryParseCidr(s), undefined, s);
    assert.equal(canonicalCidr("FD00:0:0::/64"), "fd00::/64");
  });

  it("contains and overlaps respect family and bounds", () => {
    const net = parseCidr("10.0.0.0/30");
    assert.ok(cidrContains(net, parseIP("10.0.0.3")));
    assert.ok(!cidrContains(net, parseIP("10.0.0.4")));
    assert.ok(!cidrContains(parseCidr("::/0"), parseIP("10.0.0.1")));
    assert.ok(cidrsOverlap(parseCidr("10.0.0.0/8"), parseCidr("10.1.0.0/16")));
    assert.ok(!cidrsOverlap(parseCidr("0.0.0.0/0"), parseCidr("::/0")));
  });

  it("the allocation-free IPv4 check agrees with parsing and formatting", () => {
    const octet = fc.oneof(
      fc.integer({ min: 0, max: 255 }).map(String),
      fc.constantFrom("00", "01", "256", ""),
    );
    const len = fc.oneof(fc.integer({ min: 0, max: 33 }).map(String), fc.constantFrom("024", "00", "", "+8"));
    const cidr = fc
      .tuple(octet, octet, octet, octet, len)
      .map(([a, b, c, d, l]) => `${a}.${b}.${c}.${d}/${l}`);
    fc.assert(
      fc.property(cidr, (s) => {
        const c = tryParseCidr(s);
        assert.equal(isCanonicalIPv4Cidr(s), c !== undefined && formatCidr(c) === s, s);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("families", () => {
  it("converts the configuration spelling both ways", () => {
    assert.equal(familyFromName("ipv6"), 6);
    assert.equal(familyToName(4), "ipv4");
    assert.ok(isFamilyName("ipv4") && !isFamilyName("IPv4") && !isFamilyName(4));
    assert.equal(familyOfValid("fd00::/64"), 6);
    assert.equal(familyOfValid("10.0.0.1"), 4);
  });
});
