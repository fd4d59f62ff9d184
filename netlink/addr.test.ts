import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { canonicalIP } from "../net/index.js";
import {
  bytesToIP,
  bytesToMAC,
  canonicalCIDR,
  canonicalMAC,
  formatCIDR,
  ipToBytes,
  macToBytes,
  parseCIDR,
} from "./addr.js";

describe("address helpers", () => {
  it("IPv4 and IPv6 to bytes and back in iproute2's canonical form", () => {
    assert.equal(ipToBytes("10.244.3.1").bytes.toString("hex"), "0af40301");
    assert.equal(ipToBytes("fd00::1").bytes.toString("hex"), "fd000000000000000000000000000001");
    assert.equal(canonicalIP("FD00:0:0:0:0:0:0:1"), "fd00::1");
    assert.equal(canonicalIP("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
    assert.equal(canonicalIP("::"), "::");
    assert.equal(canonicalIP("::ffff:1.2.3.4"), "::ffff:102:304");
    assert.equal(bytesToIP(Buffer.from("00010000000000000000000000000000", "hex")), "1::");
    assert.equal(canonicalIP("1:0:1:0:1:0:1:0"), "1:0:1:0:1:0:1:0");
  });

  it("CIDRs: canonical, host bits refused, bare address is a host prefix", () => {
    assert.equal(canonicalCIDR("10.244.3.64/26"), "10.244.3.64/26");
    assert.equal(canonicalCIDR("fd00:0::/64"), "fd00::/64");
    assert.equal(parseCIDR("10.0.0.1").len, 32);
    assert.throws(() => parseCIDR("10.244.3.65/26"), /host bits/);
    assert.throws(() => parseCIDR("10.244.3.0/33"), /prefix length/);
    assert.throws(() => parseCIDR("10.244.3.0/x"), /prefix length/);
    assert.throws(() => parseCIDR("10.244.300.0/24"), /not an IP/);
  });

  it("MACs", () => {
    assert.equal(canonicalMAC("02:AA:bb:00:01:ff"), "02:aa:bb:00:01:ff");
    assert.throws(() => canonicalMAC("02:aa:bb:00:01"), /MAC/);
  });

  it("the allocation-free fast paths agree with parsing and formatting", () => {
    const slow = <T>(f: () => T): T | "throws" => {
      try {
        return f();
      } catch {
        return "throws";
      }
    };
    const octet = fc.oneof(
      fc.integer({ min: 0, max: 255 }).map(String),
      fc.constantFrom("00", "01", "256", "x", ""),
    );
    const len = fc.oneof(
      fc.integer({ min: 0, max: 33 }).map(String),
      fc.constantFrom("024", "00", "", "1x", "+8"),
    );
    const cidr = fc
      .tuple(octet, octet, octet, octet, len)
      .map(([a, b, c, d, l]) => `${a}.${b}.${c}.${d}/${l}`);
    fc.assert(
      fc.property(cidr, (x) => {
        assert.deepEqual(
          slow(() => canonicalCIDR(x)),
          slow(() => {
            const p = parseCIDR(x);
            return formatCIDR(p.bytes, p.len);
          }),
        );
        const ip = x.slice(0, x.indexOf("/"));
        assert.deepEqual(
          slow(() => canonicalIP(ip)),
          slow(() => bytesToIP(ipToBytes(ip).bytes)),
        );
      }),
      { numRuns: 2000 },
    );
    const mac = fc
      .array(fc.constantFrom(..."0123456789abcdefABCDEF:g-"), { minLength: 15, maxLength: 18 })
      .map((cs) => cs.join(""));
    fc.assert(
      fc.property(fc.oneof(mac, fc.uint8Array({ minLength: 6, maxLength: 6 }).map(bytesToMAC)), (m) => {
        assert.deepEqual(
          slow(() => canonicalMAC(m)),
          slow(() => bytesToMAC(macToBytes(m))),
        );
      }),
      { numRuns: 2000 },
    );
  });
});
