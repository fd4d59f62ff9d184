import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, describe, it } from "node:test";
import { natPlan } from "../../agent/nat/rules.js";
import { NatTable } from "../../agent/nat/table.js";
import type { IPPool } from "../../api/index.js";
import { Netns, requireRootAndIproute2 } from "../../devenv/kernel-netns.js";

// The agent's NAT table against the real nftables in a namespace of its own: written whole, put
// back after someone deletes or edits it, removed when no pool wants it, and no other table
// touched. (The end-to-end NAT test with an outside host is nat.test.ts.)

const pool = (name: string, cidr: string): IPPool => ({
  apiVersion: "weft.dev/v1alpha1",
  kind: "IPPool",
  metadata: { name },
  spec: { cidr },
});

describe("NatTable on the kernel's nftables", () => {
  requireRootAndIproute2();
  try {
    execFileSync("nft", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("this test needs nft (Debian nftables): apt-get install nftables, or make tools");
  }
  const ns = new Netns("nat");
  after(() => ns.delete());
  const nft = (...args: string[]) =>
    execFileSync("ip", ["netns", "exec", ns.name, "nft", ...args]).toString();
  const table = () => {
    try {
      return nft("list", "table", "inet", "weft");
    } catch {
      return undefined;
    }
  };
  const t = new NatTable({ nft: ["ip", "netns", "exec", ns.name, "nft"] });
  const plan = natPlan([pool("a", "10.244.0.0/16"), pool("b", "fd00:10:244::/56")], new Set(["a", "b"]));
  execFileSync("ip", ["netns", "exec", ns.name, "nft", "-f", "-"], {
    input:
      "table ip bystander {\n chain post {\n  type nat hook postrouting priority 100; policy accept;\n }\n}\n",
  });
  const bystander = nft("list", "table", "ip", "bystander");

  it("writes the table with both families' rules", async () => {
    await t.set(plan);
    const text = table() ?? "";
    assert.match(text, /ip saddr @pod_sources_v4 ip daddr != @pools_v4 masquerade/);
    assert.match(text, /ip6 saddr @pod_sources_v6 ip6 daddr != @pools_v6 masquerade/);
    assert.deepEqual(t.status(), { applied: plan });
  });

  it("puts it back after someone deletes it or edits it", async () => {
    nft("delete", "table", "inet", "weft");
    await t.check();
    assert.match(table() ?? "", /masquerade/);
    nft("flush", "chain", "inet", "weft", "postrouting");
    assert.doesNotMatch(table() ?? "", /masquerade/);
    await t.check();
    assert.match(table() ?? "", /ip6 saddr @pod_sources_v6/);
  });

  it("removes it when no pool wants NAT; the other table is as it was", async () => {
    await t.set(undefined);
    assert.equal(table(), undefined);
    assert.equal(nft("list", "table", "ip", "bystander"), bystander);
    await t.stop();
  });
});
