import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validManifestFiles } from "../test/fixtures/manifests.js";
import { blockName } from "./ipamblock.js";
import { effectiveBlockSize, POOL_DEFAULTS, withPoolDefaults } from "./ippool.js";

describe("api helpers", () => {
  it("blockName turns a CIDR into the object name the CRD insists on", () => {
    assert.equal(blockName("10.244.3.64/26"), "10-244-3-64-26");
    assert.equal(blockName("fd00:10:244::40/122"), "fd00-10-244-40-122");
    assert.equal(blockName("FD00:10:244::/122"), "fd00-10-244-122");
    assert.equal(blockName("::a00/120"), "a00-120");
  });

  it("names every valid IPAMBlock fixture by blockName of its CIDR", () => {
    const blocks = validManifestFiles()
      .flatMap((f) => f.docs)
      .filter((d) => d.kind === "IPAMBlock");
    assert.ok(blocks.length > 0);
    for (const b of blocks) {
      assert.equal(b.metadata.name, blockName((b as unknown as { spec: { cidr: string } }).spec.cidr));
    }
  });

  it("effectiveBlockSize applies the family default only when blockSize is unset", () => {
    assert.equal(effectiveBlockSize({ cidr: "10.244.0.0/16" }), POOL_DEFAULTS.blockSizeV4);
    assert.equal(effectiveBlockSize({ cidr: "fd00:10:244::/56" }), POOL_DEFAULTS.blockSizeV6);
    assert.equal(effectiveBlockSize({ cidr: "10.244.0.0/16", blockSize: 24 }), 24);
    assert.equal(effectiveBlockSize({ cidr: "fd00::/48", blockSize: 120 }), 120);
  });

  it("withPoolDefaults fills in what the spec leaves out and keeps what it says", () => {
    const bare = withPoolDefaults({ name: "p", spec: { cidr: "fd00:10:244::/56" } });
    assert.equal(bare.name, "p");
    assert.deepEqual(bare.spec, {
      cidr: "fd00:10:244::/56",
      blockSize: POOL_DEFAULTS.blockSizeV6,
      allocation: POOL_DEFAULTS.allocation,
      encapsulation: POOL_DEFAULTS.encapsulation,
      vxlan: { vni: POOL_DEFAULTS.vni, port: POOL_DEFAULTS.vxlanPort },
      strictAffinity: POOL_DEFAULTS.strictAffinity,
      disabled: false,
    });
    const set = withPoolDefaults({
      spec: { cidr: "10.0.0.0/16", encapsulation: "HostGW" as const, vxlan: { port: 8472, mtu: 1400 } },
    });
    assert.equal(set.spec.encapsulation, "HostGW");
    assert.deepEqual(set.spec.vxlan, { vni: POOL_DEFAULTS.vni, port: 8472, mtu: 1400 });
    assert.equal(set.spec.blockSize, POOL_DEFAULTS.blockSizeV4);
  });
});
