import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatV6Groups } from "./ipv6text.js";

describe("formatV6Groups (RFC 5952)", () => {
  it("compresses the longest zero run, the first on a tie, and never a single zero group", () => {
    assert.equal(formatV6Groups([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]), "2001:db8::1");
    assert.equal(formatV6Groups([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]), "2001:db8::1:0:0:1");
    assert.equal(formatV6Groups([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1]), "2001:db8:0:1:1:1:1:1");
    assert.equal(formatV6Groups([0, 0, 0, 0, 0, 0, 0, 0]), "::");
    assert.equal(
      formatV6Groups([0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee]),
      "fe80::ecee:eeff:feee:eeee",
    );
  });
});
