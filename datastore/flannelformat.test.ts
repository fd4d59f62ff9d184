import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { API_VERSION, type IPPool, vtepMAC } from "../api/index.js";
import { repoRoot } from "../devenv/tools.js";
import {
  type ActualLease,
  checkPoolAgainstConfig,
  type FlannelNetworkConfig,
  flannelVxlan,
  leasePublicIP,
  leaseValue,
  mirrorable,
  networkConfigValue,
  parseLease,
  parseNetworkConfig,
  parseSubnetKey,
  planLeases,
  subnetInRange,
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
    ...spec,
  },
});

describe("Flannel etcd format", () => {
  it("network config is Flannel's JSON with flanneld's defaults spelled out, byte for byte", () => {
    assert.equal(networkConfigValue(pool()), fixture("config.json"));
    const hostgw = JSON.parse(networkConfigValue(pool({ encapsulation: "HostGW" })));
    assert.deepEqual(hostgw.Backend, { Type: "host-gw" });
    const own = JSON.parse(networkConfigValue(pool({ vxlan: { vni: 7, port: 4789 } })));
    assert.deepEqual(own.Backend, { Type: "vxlan", VNI: 7, Port: 4789 }, "the pool's own VXLAN settings win");
  });

  it("reads a config the way flanneld does: defaults for SubnetLen, SubnetMin, SubnetMax, VNI, port", () => {
    const plain = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
    assert.deepEqual(plain, {
      network: "10.244.0.0/16",
      subnetLen: 24,
      subnetMin: "10.244.1.0",
      subnetMax: "10.244.255.0",
      backendType: "vxlan",
      vni: 1,
      port: 8472,
    });
    const small = parseNetworkConfig('{"Network":"10.9.0.0/26","Backend":{"Type":"host-gw"}}');
    assert.deepEqual(small, {
      network: "10.9.0.0/26",
      subnetLen: 28,
      subnetMin: "10.9.0.16",
      subnetMax: "10.9.0.48",
      backendType: "host-gw",
    });
    assert.equal(
      (parseNetworkConfig('{"Network":"10.9.0.0/16"}') as FlannelNetworkConfig).backendType,
      "udp",
    );
    assert.deepEqual(parseNetworkConfig(fixture("config.json")), {
      ...(plain as object),
      network: "10.5.0.0/16",
      subnetMin: "10.5.1.0",
      subnetMax: "10.5.255.0",
    });
    for (const bad of [
      "{",
      '{"Network":"fd00::/48"}',
      '{"Network":"10.0.0.0/16","SubnetMin":"10.0.0.7"}',
      '{"Network":"10.0.0.0/16","SubnetLen":17}',
    ])
      assert.ok("error" in parseNetworkConfig(bad), bad);
  });

  it("a pool is checked against an existing config field by field", () => {
    const cfg = parseNetworkConfig(
      '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}',
    ) as FlannelNetworkConfig;
    assert.deepEqual(checkPoolAgainstConfig(pool(), cfg), [], "unset VNI and port take the config's");
    assert.deepEqual(
      checkPoolAgainstConfig(pool({ vxlan: { vni: 4096, port: 4789 } }), cfg).map((m) => m.field),
      ["spec.vxlan.vni", "spec.vxlan.port"],
    );
    const wrong = checkPoolAgainstConfig(
      pool({ cidr: "10.6.0.0/16", blockSize: 26, encapsulation: "HostGW" }),
      cfg,
    );
    assert.deepEqual(
      wrong.map((m) => m.field),
      ["spec.cidr", "spec.blockSize", "spec.encapsulation"],
    );
    assert.match(
      wrong[0]!.message,
      /spec\.cidr is 10\.6\.0\.0\/16 but Flannel's network config says Network 10\.5\.0\.0\/16/,
    );
    assert.deepEqual(flannelVxlan(pool(), cfg), { vni: 1, port: 8472, device: "flannel.1" });
    const vni2 = parseNetworkConfig(
      '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":2,"Port":4789}}',
    );
    assert.deepEqual(flannelVxlan(pool(), vni2 as FlannelNetworkConfig), {
      vni: 2,
      port: 4789,
      device: "flannel.2",
    });
  });

  it("SubnetMin/SubnetMax: the first subnet is never handed out", () => {
    const cfg = parseNetworkConfig(fixture("config.json")) as FlannelNetworkConfig;
    assert.equal(subnetInRange(cfg, "10.5.0.0/24"), false);
    assert.equal(subnetInRange(cfg, "10.5.1.0/24"), true);
    assert.equal(subnetInRange(cfg, "10.5.255.0/24"), true);
    assert.equal(subnetInRange(cfg, "10.5.1.0/25"), false);
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
    assert.deepEqual(parseLease(fixture("subnets-10.5.52.0-24.flanneld.json")), {
      publicIP: "192.168.64.3",
      backendType: "vxlan",
      vni: 1,
      vtepMAC: "c6:d2:32:6f:8f:44",
    });
    assert.deepEqual(parseLease(fixture("subnets-host-gw.weft.json")), {
      publicIP: "192.168.64.5",
      backendType: "host-gw",
    });
    assert.equal(leasePublicIP("not json"), undefined);
    assert.equal(parseLease('{"PublicIP":"fd00::1"}'), undefined);
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
  const ours = new Set(["1001"]);
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
    const plan = planLeases(want, [a("10.5.2.0/24", want[1]!.value, "1001")], ours);
    assert.deepEqual(plan.actions, [
      { kind: "create", cidr: "10.5.1.0/24", node: "a", value: want[0]!.value },
    ]);
    assert.equal(plan.status.get("b")?.state, "Leased");
  });

  it("takes over a key another writer holds for the same PublicIP; another PublicIP is a conflict", () => {
    const flanneld = fixture("subnets-10.5.52.0-24.flanneld.json");
    const want = [d("10.5.52.0/24", "a", "192.168.64.3"), d("10.5.53.0/24", "b", "192.168.64.9")];
    const plan = planLeases(
      want,
      [a("10.5.52.0/24", flanneld, "555"), a("10.5.53.0/24", flanneld, "556")],
      ours,
    );
    assert.deepEqual(plan.actions, [
      { kind: "takeover", cidr: "10.5.52.0/24", node: "a", value: want[0]!.value, modRevision: "7" },
    ]);
    assert.equal(plan.status.get("b")?.state, "Conflict");
    assert.match(plan.status.get("b")!.message, /192\.168\.64\.3/);
  });

  it("keeps reservations (no TTL), updates its own stale values, deletes only its own orphans", () => {
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
        a("10.5.2.0/24", stale, "1001", "8"),
        a("10.5.3.0/24", stale, "1001", "9"),
        a("10.5.4.0/24", stale, "555", "10"),
      ],
      ours,
    );
    assert.deepEqual(plan.actions, [
      { kind: "update", cidr: "10.5.2.0/24", node: "b", value: want[1]!.value, modRevision: "8" },
      { kind: "delete", cidr: "10.5.3.0/24", modRevision: "9" },
    ]);
    assert.equal(plan.status.get("a")?.state, "Reserved");
  });
});
