import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isIpamError, parseCidr, parseIP } from "./index.js";

describe("ipam addresses", () => {
  it("parse as net/ does", () => {
    assert.deepEqual(parseIP("10.244.3.64"), { family: 4, value: 0x0af40340n });
    assert.deepEqual(parseCidr("fd00::/64"), { family: 6, base: 0xfd00n << 112n, prefix: 64 });
    assert.deepEqual(parseCidr("10.244.0.1/16", false), { family: 4, base: 0x0af40000n, prefix: 16 });
  });

  it("report bad text as an IpamError the IPAM's callers handle", () => {
    assert.throws(
      () => parseIP("1.2.3"),
      (e) => isIpamError(e, "InvalidAddress") && /1\.2\.3/.test(e.message),
    );
    assert.throws(
      () => parseCidr("10.244.0.1/16"),
      (e) => isIpamError(e, "InvalidCidr") && /did you mean 10\.244\.0\.0\/16\?/.test(e.message),
    );
  });
});
