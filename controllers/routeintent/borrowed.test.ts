import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { API_VERSION, type IPAMBlock, type IPAMBlockSpec, type IPPool } from "../../api/index.js";
import { announcements } from "../../bgp/index.js";
import { borrowersOf } from "../../ipam/index.js";
import { borrowedBlocks, desiredIntent } from "./reconciler.js";

/** Node n1's block of a loose pool, with addresses borrowed by n2 (two) and n3 (one). */
const lender: IPAMBlockSpec = {
  cidr: "10.250.0.0/28",
  pool: "loose",
  affinity: "n1",
  sequence: 4,
  allocations: [
    { ordinal: 1, handle: "a.eth0", sequence: 1 },
    { ordinal: 2, handle: "b.eth0", sequence: 2, node: "n2" },
    { ordinal: 9, handle: "c.eth0", sequence: 3, node: "n2" },
    { ordinal: 3, handle: "d.eth0", sequence: 4, node: "n3" },
  ],
};
const own: IPAMBlock = {
  apiVersion: API_VERSION,
  kind: "IPAMBlock",
  metadata: { name: "10-250-0-16-28" },
  spec: { cidr: "10.250.0.16/28", pool: "loose", affinity: "n2", sequence: 0, allocations: [] },
};
const pool = (encapsulation: "HostGW" | "BGP"): IPPool => ({
  apiVersion: API_VERSION,
  kind: "IPPool",
  metadata: { name: "loose" },
  spec: { cidr: "10.250.0.0/24", blockSize: 28, strictAffinity: false, encapsulation },
});
const node: k8s.V1Node = {
  metadata: { name: "n2" },
  status: { addresses: [{ type: "InternalIP", address: "192.0.2.12" }] },
};

describe("borrowed addresses are routed to the borrower", () => {
  it("a block names its borrowers, never its own node", () => {
    assert.deepEqual([...borrowersOf(lender)].sort(), ["n2", "n3"]);
    assert.deepEqual([...borrowersOf({ ...lender, allocations: [lender.allocations[0]!] })], []);
  });

  it("the borrower's RouteIntent routes each borrowed address as a /32 beside its own block", () => {
    const desired = desiredIntent("n2", node, [own, ...borrowedBlocks([lender], "n2")], [pool("HostGW")]);
    assert.ok("spec" in desired, JSON.stringify(desired));
    assert.deepEqual(
      desired.spec.routes.map((r) => [r.dst, r.gateway]),
      [
        ["10.250.0.16/28", "192.0.2.12"],
        ["10.250.0.2/32", "192.0.2.12"],
        ["10.250.0.9/32", "192.0.2.12"],
      ].sort(),
    );
  });

  it("BGP: the borrower announces its borrowed addresses, the lender only its block", () => {
    const blocks = [{ spec: lender }, own];
    const n2 = announcements(
      "n2",
      [pool("BGP")],
      blocks,
      borrowedBlocks([lender], "n2").map((b) => b.spec),
    );
    assert.deepEqual(n2.blocks, ["10.250.0.16/28", "10.250.0.2/32", "10.250.0.9/32"]);
    const n1 = announcements(
      "n1",
      [pool("BGP")],
      blocks,
      borrowedBlocks([lender], "n1").map((b) => b.spec),
    );
    assert.deepEqual(n1.blocks, ["10.250.0.0/28"]);
  });
});
