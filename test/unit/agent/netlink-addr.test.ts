import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  bytesToIP,
  canonicalCIDR,
  canonicalIP,
  canonicalMAC,
  ipToBytes,
  parseCIDR,
} from "../../../agent/netlink/addr.js";

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
});
