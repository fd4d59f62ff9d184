import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { API_VERSION, type IPAMBlock, type IPPool, vtepMAC } from "../../api/index.js";
import { type ActualLease, leaseValue } from "../../datastore/index.js";
import { type FlannelInput, leaseIntentName, planFlannel, unavailableFor } from "./plan.js";

const pool = (spec: Partial<IPPool["spec"]> = {}): IPPool => ({
  apiVersion: API_VERSION,
  kind: "IPPool",
  metadata: { name: "flannel" },
  spec: {
    cidr: "10.244.0.0/16",
    blockSize: 24,
    allocation: "NodeSubnet",
    encapsulation: "VXLAN",
    nodeSelector: { matchLabels: { cluster: "lab" } },
    ...spec,
  },
});
const block = (node: string, cidr: string, annotations?: Record<string, string>): IPAMBlock => ({
  apiVersion: API_VERSION,
  kind: "IPAMBlock",
  metadata: { name: cidr.replace(/[./]/g, "-"), ...(annotations ? { annotations } : {}) },
  spec: { cidr, pool: "flannel", affinity: node, allocations: [], sequence: 1 },
});
const FLANNELD_MAC = "7a:9d:5c:01:02:03";
const flanneldLease = (cidr: string, ip: string, lease = "777"): ActualLease => ({
  cidr,
  lease,
  modRevision: "40",
  value: leaseValue({ publicIP: ip, backendType: "vxlan", vni: 1, vtepMAC: FLANNELD_MAC }),
});
const nodes = ["a", "b", "c", "d"].map((n, i) => ({
  name: n,
  ip: `192.0.2.${11 + i}`,
  labels: { cluster: "lab" },
}));
const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';
const input = (over: Partial<FlannelInput> = {}): FlannelInput => ({
  pools: [pool()],
  config: CONFIG,
  leases: [],
  ours: new Set(["1001"]),
  nodes,
  blocks: [block("a", "10.244.1.0/24"), block("b", "10.244.2.0/24"), block("c", "10.244.3.0/24")],
  agents: new Set(["a", "b", "c"]),
  ...over,
});

describe("planFlannel", () => {
  it("mixed cluster: Weft leases its nodes, a flanneld lease becomes that node's RouteIntent", () => {
    const p = planFlannel(input({ leases: [flanneldLease("10.244.9.0/24", "192.0.2.14")] }));
    assert.equal(p.active, true);
    assert.equal(p.writeConfig, undefined, "an existing config is never rewritten");
    assert.deepEqual(p.vxlan, { vni: 1, port: 8472, device: "flannel.1" });
    assert.deepEqual(
      p.leases.actions.map((a) => [a.kind, a.cidr]),
      [
        ["create", "10.244.1.0/24"],
        ["create", "10.244.2.0/24"],
        ["create", "10.244.3.0/24"],
      ],
    );
    assert.deepEqual([...p.flanneldNodes], ["d"]);
    const d = p.intents.get("d");
    assert.ok(d);
    assert.deepEqual(d.labels, { cluster: "lab", "weft.dev/flannel-lease": "10.244.9.0-24" });
    assert.deepEqual(d.spec.vtep, {
      ip: "10.244.9.0",
      mac: FLANNELD_MAC,
      vni: 1,
      port: 8472,
      device: "flannel.1",
    });
    assert.deepEqual(d.spec.routes, [
      { dst: "10.244.9.0/24", gateway: "10.244.9.0", device: "flannel.1", onlink: true },
    ]);
    assert.deepEqual(d.spec.fdb, [{ mac: FLANNELD_MAC, dst: "192.0.2.14", device: "flannel.1" }]);
    assert.deepEqual(p.subnetFor.get("d"), { cidr: "10.244.9.0/24", vtepMAC: FLANNELD_MAC });
    const row = p.rows.find((r) => r.cidr === "10.244.9.0/24");
    assert.deepEqual([row?.owner, row?.node, row?.runBy], ["flanneld", "d", "flanneld"]);
  });

  it("a lease whose PublicIP is no Node's gets an intent of its own, labelled like the pool's nodes", () => {
    const p = planFlannel(input({ leases: [flanneldLease("10.244.50.0/24", "192.0.2.99")] }));
    const name = leaseIntentName("10.244.50.0/24");
    assert.equal(name, "flannel-10-244-50-0-24");
    assert.deepEqual(p.intents.get(name)?.labels, {
      cluster: "lab",
      "weft.dev/flannel-lease": "10.244.50.0-24",
    });
    assert.equal(p.intents.get(name)?.spec.node, name);
  });

  it("host-gw: the intent routes via the PublicIP, nothing for a VXLAN device", () => {
    const p = planFlannel(
      input({
        pools: [pool({ encapsulation: "HostGW" })],
        config: '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}',
        leases: [
          {
            cidr: "10.244.9.0/24",
            lease: "777",
            modRevision: "3",
            value: leaseValue({ publicIP: "192.0.2.14", backendType: "host-gw" }),
          },
        ],
      }),
    );
    assert.equal(p.vxlan, undefined);
    assert.deepEqual(p.intents.get("d")?.spec.routes, [{ dst: "10.244.9.0/24", gateway: "192.0.2.14" }]);
    assert.equal(p.intents.get("d")?.spec.encapsulation, "HostGW");
  });

  it("the node's agent reports: its lease is taken over once, same subnet and MAC", () => {
    const lease = flanneldLease("10.244.9.0/24", "192.0.2.14");
    const marked = block("d", "10.244.9.0/24", {
      "weft.dev/flannel-lease": "10.244.9.0-24",
      "weft.dev/vtep-mac": FLANNELD_MAC,
    });
    const before = planFlannel(input({ leases: [lease], blocks: [...input().blocks, marked] }));
    assert.ok(before.flanneldNodes.has("d"), "no agent yet: still flanneld's");
    assert.ok(!before.leases.actions.some((a) => a.cidr === lease.cidr), "flanneld's lease is never touched");
    assert.deepEqual(before.blockMarks, []);
    const after = planFlannel(
      input({ leases: [lease], blocks: [...input().blocks, marked], agents: new Set(["a", "b", "c", "d"]) }),
    );
    assert.ok(after.weftNodes.has("d"));
    assert.equal(after.intents.size, 0);
    const t = after.leases.actions.find((a) => a.cidr === lease.cidr);
    assert.deepEqual(t, {
      kind: "takeover",
      cidr: "10.244.9.0/24",
      node: "d",
      value: lease.value,
      modRevision: "40",
    });
  });

  it("a block of a node flanneld runs is marked with its lease and MAC", () => {
    const p = planFlannel(
      input({
        leases: [flanneldLease("10.244.9.0/24", "192.0.2.14")],
        blocks: [...input().blocks, block("d", "10.244.9.0/24")],
      }),
    );
    assert.deepEqual(p.blockMarks, [
      {
        block: "10-244-9-0-24",
        annotations: { "weft.dev/flannel-lease": "10.244.9.0-24", "weft.dev/vtep-mac": FLANNELD_MAC },
      },
    ]);
  });

  it("flanneld's lease expired and no agent runs the node: no intent and no lease for it", () => {
    const marked = block("d", "10.244.9.0/24", { "weft.dev/flannel-lease": "10.244.9.0-24" });
    const p = planFlannel(input({ blocks: [...input().blocks, marked] }));
    assert.ok(p.flanneldNodes.has("d"));
    assert.equal(p.intents.size, 0);
    assert.ok(!p.leases.actions.some((a) => a.cidr === "10.244.9.0/24"));
  });

  it("Weft's own keys are updated and deleted; another's never", () => {
    const mine = leaseValue({ publicIP: "192.0.2.11", backendType: "vxlan", vni: 1, vtepMAC: vtepMAC("a") });
    const p = planFlannel(
      input({
        blocks: [block("a", "10.244.1.0/24")],
        leases: [
          { cidr: "10.244.1.0/24", lease: "1001", modRevision: "5", value: mine },
          { cidr: "10.244.7.0/24", lease: "1001", modRevision: "6", value: mine.replace(".11", ".77") },
        ],
      }),
    );
    assert.deepEqual(p.leases.actions, [{ kind: "delete", cidr: "10.244.7.0/24", modRevision: "6" }]);
  });

  it("no config: Weft writes Flannel's defaults for the profile; a mismatch names the field and stops the mirror", () => {
    const fresh = planFlannel(input({ config: undefined }));
    assert.equal(
      fresh.writeConfig,
      '{"Network":"10.244.0.0/16","SubnetLen":24,"SubnetMin":"10.244.1.0","SubnetMax":"10.244.255.0","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}',
    );
    assert.equal(fresh.active, true);
    const wrong = planFlannel(input({ pools: [pool({ vxlan: { vni: 4096 } })] }));
    assert.equal(wrong.active, false);
    assert.deepEqual(
      wrong.mismatches.map((m) => m.field),
      ["spec.vxlan.vni"],
    );
    assert.equal(wrong.intents.size, 0);
  });

  it("unavailable blocks: other hosts' leases and the first subnet, never the node's own lease", () => {
    const p = planFlannel(input({ leases: [flanneldLease("10.244.9.0/24", "192.0.2.14")] }));
    const forA = unavailableFor(p, "a")!;
    assert.equal(forA.has("10.244.9.0/24"), true);
    assert.equal(forA.has("10.244.0.0/24"), true, "flanneld skips the first subnet, and so does Weft");
    assert.equal(forA.has("10.244.10.0/24"), false);
    assert.equal(unavailableFor(p, "d")!.has("10.244.9.0/24"), false);
  });
});
