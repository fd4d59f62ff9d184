import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import type { IPAMBlock, IPPool, IPPoolSpec } from "../../api/index.js";
import { assignInBlock, newBlockSpec, vtepHandle } from "../../ipam/index.js";
import { planMigration } from "./migrate-plan.js";

const pool = (name: string, spec: IPPoolSpec): IPPool => ({
  apiVersion: "weft.dev/v1alpha1",
  kind: "IPPool",
  metadata: { name },
  spec,
});

const block = (cidr: string, node: string, reqs: Parameters<typeof assignInBlock>[1]): IPAMBlock => ({
  apiVersion: "weft.dev/v1alpha1",
  kind: "IPAMBlock",
  metadata: { name: cidr },
  spec: assignInBlock(newBlockSpec(cidr, "a", node), reqs).spec,
});

const pod = (name: string, node: string, extra: Partial<k8s.V1ObjectMeta> = {}): k8s.V1Pod => ({
  metadata: { name, namespace: "web", uid: `uid-${name}`, ...extra },
  spec: { nodeName: node, containers: [] },
});

const owned = {
  ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "rs", uid: "u", controller: true }],
};

describe("pool migration plan", () => {
  const blocks = [
    block("10.1.0.0/28", "n1", [
      { handle: vtepHandle("n1") },
      { handle: "s1.eth0", namespace: "web", pod: "app-1" },
      { handle: "s2.eth0", namespace: "web", pod: "bare" },
      { handle: "s3.eth0", namespace: "web", pod: "gone" },
      { handle: "s4.eth0", namespace: "web", pod: "pinned" },
    ]),
  ];
  const pods = [
    pod("app-1", "n1", owned),
    pod("bare", "n1"),
    pod("pinned", "n1", { ...owned, annotations: { "weft.dev/ipv4pools": '["a"]' } }),
  ];
  const base = {
    from: "a",
    to: "b",
    blocks,
    pods,
    namespaces: [{ metadata: { name: "web" } }],
    nodes: [{ metadata: { name: "n1" } }],
  };

  it("needs A disabled and B usable before anything is restarted", () => {
    const p = planMigration({
      ...base,
      pools: [pool("a", { cidr: "10.1.0.0/24" }), pool("b", { cidr: "fd00::/64" })],
    });
    assert.match(
      p.errors.join("\n"),
      /kubectl patch ippool a --type merge -p '\{"spec":\{"disabled":true\}\}'/,
    );
    assert.match(p.errors.join("\n"), /pool a is IPv4 and pool b IPv6/);
  });

  it("lists holders: restartable, pinned to A by annotation, unowned; VTEPs and leaks apart", () => {
    const p = planMigration({
      ...base,
      pools: [pool("a", { cidr: "10.1.0.0/24", disabled: true }), pool("b", { cidr: "10.2.0.0/24" })],
    });
    assert.deepEqual(p.errors, []);
    const by = new Map(p.holders.map((h) => [h.pod, h]));
    assert.equal(by.get("app-1")?.skip, undefined);
    assert.equal(by.get("app-1")?.owner, "ReplicaSet/rs");
    assert.match(by.get("bare")?.skip ?? "", /--include-unowned/);
    assert.match(by.get("pinned")?.skip ?? "", /weft\.dev\/ipv4pools annotation names a; change it to b/);
    assert.deepEqual(p.vteps, [{ node: "n1", ip: "10.1.0.0" }]);
    assert.deepEqual(
      p.orphans.map((o) => o.handle),
      ["s3.eth0"],
    );
    const all = planMigration({
      ...base,
      includeUnowned: true,
      pools: [pool("a", { cidr: "10.1.0.0/24", disabled: true }), pool("b", { cidr: "10.2.0.0/24" })],
    });
    assert.equal(all.holders.find((h) => h.pod === "bare")?.skip, undefined);
  });

  it("warns about namespaces that name A and leaves their pods alone", () => {
    const p = planMigration({
      ...base,
      namespaces: [{ metadata: { name: "web", annotations: { "weft.dev/ipv4pools": '["a"]' } } }],
      pools: [pool("a", { cidr: "10.1.0.0/24", disabled: true }), pool("b", { cidr: "10.2.0.0/24" })],
    });
    assert.match(p.warnings.join("\n"), /namespace web names a in weft\.dev\/ipv4pools/);
    assert.match(
      p.holders.find((h) => h.pod === "app-1")?.skip ?? "",
      /namespace web's weft\.dev\/ipv4pools/,
    );
  });
});
