import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPPool } from "../../api/index.js";
import { NAT_TABLE_TEXT, natPlan, natScript } from "./rules.js";

const pool = (name: string, cidr: string, natOutgoing?: boolean): IPPool => ({
  apiVersion: "weft.dev/v1alpha1",
  kind: "IPPool",
  metadata: { name },
  spec: { cidr, ...(natOutgoing === undefined ? {} : { natOutgoing }) },
});

describe("natPlan", () => {
  const pools = [
    pool("v4", "10.244.0.0/16"),
    pool("v6", "FD00:10:244::/56"),
    pool("plain", "10.96.0.0/16", false),
    pool("elsewhere", "10.50.0.0/16"),
  ];

  it("masquerades the node's own pools with natOutgoing (on by default) to outside every pool", () => {
    const plan = natPlan(pools, new Set(["v4", "v6", "plain"]));
    assert.deepEqual(plan, {
      pools: ["v4", "v6"],
      sources: { v4: ["10.244.0.0/16"], v6: ["fd00:10:244::/56"] },
      inside: { v4: ["10.50.0.0/16", "10.96.0.0/16", "10.244.0.0/16"], v6: ["fd00:10:244::/56"] },
    });
  });

  it("is undefined (no table) when no pool of the node wants NAT", () => {
    assert.equal(natPlan(pools, new Set(["plain"])), undefined);
    assert.equal(natPlan(pools, new Set()), undefined);
  });
});

describe("natScript", () => {
  it("replaces the whole table in one batch and names no other table", () => {
    const script = natScript(
      natPlan([pool("v4", "10.244.0.0/16"), pool("v6", "fd00:10:244::/56")], new Set(["v4", "v6"])),
    );
    const lines = script.trim().split("\n");
    assert.deepEqual(lines.slice(0, 3), [
      `table ${NAT_TABLE_TEXT}`,
      `delete table ${NAT_TABLE_TEXT}`,
      `table ${NAT_TABLE_TEXT} {`,
    ]);
    assert.deepEqual(
      lines.filter((l) => /\btable\b/.test(l)).map((l) => l.replace(/ \{$/, "")),
      ["table inet weft", "delete table inet weft", "table inet weft"],
    );
    assert.ok(lines.includes("    ip saddr @pod_sources_v4 ip daddr != @pools_v4 masquerade"));
    assert.ok(lines.includes("    ip6 saddr @pod_sources_v6 ip6 daddr != @pools_v6 masquerade"));
    assert.ok(lines.includes("    type nat hook postrouting priority srcnat; policy accept;"));
  });

  it("an IPv4-only plan has no IPv6 rule and no empty set", () => {
    const script = natScript(natPlan([pool("v4", "10.244.0.0/16")], new Set(["v4"])));
    assert.doesNotMatch(script, /ip6|_v6/);
    assert.doesNotMatch(script, /elements = \{ \}/);
  });

  it("without a plan only deletes the table", () => {
    assert.equal(natScript(undefined), `table ${NAT_TABLE_TEXT}\ndelete table ${NAT_TABLE_TEXT}\n`);
  });
});
