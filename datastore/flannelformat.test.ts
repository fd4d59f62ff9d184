import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { API_VERSION, type IPPool, vtepMAC } from "../api/index.js";
import { repoRoot } from "../devenv/tools.js";
import {
  type ActualLease,
  adoptions,
  leasePublicIP,
  leaseValue,
  mirrorable,
  networkConfigValue,
  parseSubnetKey,
  planLeases,
  subnetKey,
  subnetOfPool,
} from "./flannelformat.js";

const fixture = (f: string) => readFileSync(join(repoRoot, "test", "fixtures", "flannel", f), "utf8");

const pool = (spec: Partial<IPPool["spec"]> = {}): IPPool => ({
  apiVersion: API_VERSION,
  kind: "IPPool",
  metadata: { name: "flannel" },
  spec: {
    cidr: "10.5.0.0/16",
    blockSize: 24,
    allocation: "NodeSubnet",
    encapsulation: "VXLAN",
    vxlan: { vni: 1, port: 8472 },
    ...spec,
  },
});

describe("Flannel etcd format", () => {
  it("network config is Flannel's JSON, byte for byte", () => {
    assert.equal(networkConfigValue(pool()), fixture("config.json"));
  });

  it("a lease Weft writes is Flannel's LeaseAttrs JSON, byte for byte", () => {
    const value = leaseValue({
      publicIP: "192.168.64.5",
      backendType: "vxlan",
      vni: 1,
      vtepMAC: vtepMAC("node-c"),
    });
    assert.equal(value, fixture("subnets-node-c.weft.json"));
    assert.equal(
      leaseValue({ publicIP: "192.168.64.5", backendType: "host-gw" }),
      fixture("subnets-host-gw.weft.json"),
    );
  });

  it("reads flanneld's documented lease", () => {
    assert.equal(leasePublicIP(fixture("subnets-10.5.52.0-24.flanneld.json")), "192.168.64.3");
    assert.equal(leasePublicIP("not json"), undefined);
  });

  it("subnet keys: 10.5.52.0/24 <-> 10.5.52.0-24; other keys are not leases", () => {
    assert.equal(subnetKey("10.5.52.0/24"), "10.5.52.0-24");
    assert.equal(parseSubnetKey("/coreos.com/network/subnets/10.5.52.0-24"), "10.5.52.0/24");
    assert.equal(parseSubnetKey("/coreos.com/network/subnets/10.5.52.0-24&fc00::-64"), undefined);
    assert.equal(parseSubnetKey("/coreos.com/network/config"), undefined);
    assert.equal(parseSubnetKey("/x/subnets/300.1.1.0-24"), undefined);
  });

  it("mirrors only IPv4 NodeSubnet pools Flannel can describe", () => {
    assert.equal(mirrorable(pool()), true);
    assert.equal(mirrorable(pool({ allocation: "Blocks" })), false);
    assert.equal(mirrorable(pool({ encapsulation: "BGP" })), false);
    assert.equal(mirrorable(pool({ disabled: true })), false);
    assert.equal(mirrorable(pool({ cidr: "fd00::/48", blockSize: 64 })), false);
    assert.equal(subnetOfPool("10.5.52.0/24", pool()), true);
    assert.equal(subnetOfPool("10.6.52.0/24", pool()), false);
    assert.equal(subnetOfPool("10.5.52.0/25", pool()), false);
  });
});

describe("planLeases", () => {
  const ours = "1001";
  const d = (cidr: string, node: string, ip: string) => ({
    cidr,
    node,
    publicIP: ip,
    value: leaseValue({ publicIP: ip, backendType: "vxlan", vni: 1, vtepMAC: vtepMAC(node) }),
  });
  const a = (cidr: string, value: string, lease: string, modRevision = "7"): ActualLease => ({
    cidr,
    value,
    lease,
    modRevision,
  });

  it("creates missing leases and leaves held ones alone", () => {
    const want = [d("10.5.1.0/24", "a", "192.168.0.1"), d("10.5.2.0/24", "b", "192.168.0.2")];
    const plan = planLeases(want, [a("10.5.2.0/24", want[1]!.value, ours)], ours);
    assert.deepEqual(plan.actions, [
      { kind: "create", cidr: "10.5.1.0/24", node: "a", value: want[0]!.value },
    ]);
    assert.equal(plan.status.get("b")?.state, "Leased");
  });

  it("never overwrites someone else's lease: same node is adopted as is, another PublicIP is a conflict", () => {
    const flanneld = fixture("subnets-10.5.52.0-24.flanneld.json");
    const want = [d("10.5.52.0/24", "a", "192.168.64.3"), d("10.5.53.0/24", "b", "192.168.64.9")];
    const plan = planLeases(
      want,
      [a("10.5.52.0/24", flanneld, "555"), a("10.5.53.0/24", flanneld, "556")],
      ours,
    );
    assert.deepEqual(plan.actions, [
      { kind: "adopt", cidr: "10.5.52.0/24", node: "a", value: flanneld, modRevision: "7" },
    ]);
    assert.equal(plan.status.get("a")?.state, "Adopted");
    assert.equal(plan.status.get("b")?.state, "Conflict");
    assert.match(plan.status.get("b")!.message, /192\.168\.64\.3/);
  });

  it("keeps reservations (no TTL), updates its own stale values, deletes its own orphans", () => {
    const want = [d("10.5.1.0/24", "a", "192.168.0.1"), d("10.5.2.0/24", "b", "192.168.0.2")];
    const stale = leaseValue({
      publicIP: "192.168.0.99",
      backendType: "vxlan",
      vni: 1,
      vtepMAC: vtepMAC("b"),
    });
    const plan = planLeases(
      want,
      [
        a("10.5.1.0/24", want[0]!.value, "0"),
        a("10.5.2.0/24", stale, ours, "8"),
        a("10.5.3.0/24", stale, ours, "9"),
      ],
      ours,
    );
    assert.deepEqual(plan.actions, [
      { kind: "update", cidr: "10.5.2.0/24", node: "b", value: want[1]!.value, modRevision: "8" },
      { kind: "delete", cidr: "10.5.3.0/24", modRevision: "9" },
    ]);
    assert.equal(plan.status.get("a")?.state, "Reserved");
  });

  it("adoptions: each known node keeps the subnet its lease names (lowest if several)", () => {
    const v = (ip: string) =>
      leaseValue({ publicIP: ip, backendType: "vxlan", vni: 1, vtepMAC: "02:00:00:00:00:01" });
    const nodes = new Map([
      ["192.168.0.1", "a"],
      ["192.168.0.2", "b"],
    ]);
    const got = adoptions(
      [
        a("10.5.9.0/24", v("192.168.0.1"), "1"),
        a("10.5.3.0/24", v("192.168.0.1"), "1"),
        a("10.5.4.0/24", v("192.168.0.2"), "1"),
        a("10.5.5.0/24", v("192.168.0.77"), "1"),
        a("10.9.5.0/24", v("192.168.0.2"), "1"),
      ],
      pool(),
      nodes,
    );
    assert.deepEqual(got, [
      { node: "a", cidr: "10.5.3.0/24" },
      { node: "b", cidr: "10.5.4.0/24" },
    ]);
  });
});

describe("planLeases after adoption", () => {
  it("an adopted lease renewed on our lease is still not rewritten", () => {
    const flanneld = readFileSync(
      join(repoRoot, "test", "fixtures", "flannel", "subnets-10.5.52.0-24.flanneld.json"),
      "utf8",
    );
    const want = [
      {
        cidr: "10.5.52.0/24",
        node: "a",
        publicIP: "192.168.64.3",
        value: leaseValue({ publicIP: "192.168.64.3", backendType: "vxlan", vni: 1, vtepMAC: vtepMAC("a") }),
      },
    ];
    const actual = [{ cidr: "10.5.52.0/24", value: flanneld, lease: "1001", modRevision: "3" }];
    const plan = planLeases(want, actual, "1001", new Map([["10.5.52.0/24", flanneld]]));
    assert.deepEqual(plan.actions, []);
    assert.equal(plan.status.get("a")?.state, "Adopted");
  });
});
