import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { testCluster } from "../../devenv/cluster.js";
import { ClusterNetwork, formatConnectivity } from "../../devenv/clusternet.js";
import { startTestEtcd } from "../../devenv/containers/etcd.js";
import type { EtcdServer } from "../../devenv/etcd.js";
import {
  addFlannelPod,
  continuousPing,
  type Flanneld,
  flanneldSubnet,
  startFlanneld,
  stopFlanneld,
} from "../../devenv/flannel.js";
import { waitFor } from "../../devenv/procs.js";
import { ip, requireRoot } from "../../devenv/topology.js";

// Issue 15, migration: a three-node cluster runs the real flanneld only (config written by hand
// as a Flannel user does, VNI 1 / port 8472 by Flannel's defaults). Weft's controller starts and
// changes nothing flanneld relies on; then node by node flanneld stops and weft-agent starts (the
// hard switch-over of docs/flannel-migration.md). Every pod keeps its address and the ping
// matrix is complete after every step; pings lost during each switch are counted and reported.

const PREFIX = "/coreos.com/network";

describe("a flanneld cluster moved to Weft node by node", { timeout: 600_000 }, () => {
  requireRoot("the dataplane tests");
  const cp = testCluster().state;
  const id = `wfm${process.pid}`;
  const runDir = join(tmpdir(), `weft-${id}`);
  const network = `10.${150 + (process.pid % 50)}.0.0/16`;
  const config = JSON.stringify({ Network: network, Backend: { Type: "vxlan" } });
  let etcd: EtcdServer | undefined;
  let net: ClusterNetwork | undefined;
  const flanneld = new Map<string, Flanneld>();
  const subnets = new Map<string, string>(); // node -> 10.x.y.0/24
  const podIPs = new Map<string, string>();

  /** value and etcd lease id (as text: int64) of a key. */
  async function keyState(key: string): Promise<{ value: string; lease: string } | undefined> {
    const raw = await etcd!.etcdctl(["get", key, "-w", "json"]);
    const kv = (JSON.parse(raw) as { kvs?: Array<{ value: string }> }).kvs?.[0];
    if (!kv) return undefined;
    return {
      value: Buffer.from(kv.value, "base64").toString(),
      lease: /"lease":(\d+)/.exec(raw)?.[1] ?? "0",
    };
  }
  const leaseKey = (node: string) => `${PREFIX}/subnets/${subnets.get(node)!.replace("/", "-")}`;

  async function matrix(step: string): Promise<void> {
    const result = await net!.waitConnectivity(90_000);
    assert.equal(result.total, 6 * 5);
    assert.equal(result.ok, result.total, `${step}\n${formatConnectivity(result)}\n${net!.logTails()}`);
    for (const pod of net!.topo.pods.values())
      assert.equal(pod.ip, podIPs.get(pod.name), `${pod.name} keeps its address`);
  }

  before(async () => {
    etcd = await startTestEtcd();
    net = new ClusterNetwork({ id, runDir, cp, datastore: "etcd", etcd });
    await etcd.etcdctl(["put", `${PREFIX}/config`, config]);
    await net.up(3, { components: false });
    for (const i of [1, 2, 3]) {
      const name = net.nodeName(i);
      const f = startFlanneld(net.topo, net.topo.nodes.get(name)!, etcd, runDir, PREFIX);
      flanneld.set(name, f);
    }
    for (const [name, f] of flanneld) {
      const fsub = await flanneldSubnet(f);
      subnets.set(name, `${fsub.replace(/\.\d+\/\d+$/, ".0")}/24`);
      for (const [suffix, host] of [
        ["a", 2],
        ["b", 3],
      ] as const) {
        const pod = await addFlannelPod(net.topo, f.node, `${name}-${suffix}`, fsub, host);
        podIPs.set(pod.name, pod.ip);
      }
    }
  });
  after(async () => {
    try {
      await net?.destroy();
    } finally {
      await etcd?.stop();
      rmSync(runDir, { recursive: true, force: true });
    }
  });

  it("the flanneld-only cluster works (Flannel's defaults from a hand-written config)", async () => {
    const [dev] = JSON.parse(
      await ip(["-n", net!.topo.nodes.get(net!.nodeName(1))!.ns, "-d", "-json", "link", "show", "flannel.1"]),
    ) as Array<{ linkinfo: { info_data: { id: number; port: number } } }>;
    assert.equal(dev!.linkinfo.info_data.id, 1);
    assert.equal(dev!.linkinfo.info_data.port, 8472);
    await matrix("flanneld only");
  });

  it("Weft's controller starts: the config and every flanneld key stay byte for byte, each node keeps its subnet", async () => {
    const before = new Map<string, { value: string; lease: string } | undefined>();
    for (const n of subnets.keys()) before.set(n, await keyState(leaseKey(n)));
    await net!.createPool(
      net!.pool(`${id}-pool`, network, "vxlan", { allocation: "NodeSubnet", blockSize: 24 }),
    );
    net!.startController();
    // each node's subnet becomes its block, and its lease a RouteIntent
    for (const [n, cidr] of subnets) {
      await waitFor(
        `${n}'s block and RouteIntent from its lease`,
        async () => {
          const blocks = (await net!.store.list("IPAMBlock")).items.filter((b) => b.spec.affinity === n);
          const ri = await net!.store.get("RouteIntent", n);
          return blocks.length === 1 && blocks[0]!.spec.cidr === cidr && ri?.spec.routes[0]?.dst === cidr
            ? true
            : undefined;
        },
        90_000,
      );
    }
    const pool = await waitFor("the pool's FlannelCompatible condition", async () =>
      (await net!.store.get("IPPool", `${id}-pool`))?.status?.conditions?.find(
        (c) => c.type === "FlannelCompatible",
      ),
    );
    assert.equal(pool.status, "True", pool.message);
    assert.equal(
      (await keyState(`${PREFIX}/config`))?.value,
      config,
      "Flannel's config is never overwritten",
    );
    for (const n of subnets.keys()) assert.deepEqual(await keyState(leaseKey(n)), before.get(n));
    await matrix("controller started, flanneld everywhere");
  });

  for (const i of [1, 2, 3])
    it(`node ${i} switches from flanneld to weft-agent: same subnet and VTEP MAC, the matrix stays complete`, async (t) => {
      const name = net!.nodeName(i);
      const was = await keyState(leaseKey(name));
      assert.ok(was);
      const mac = (JSON.parse(was.value) as { BackendData: { VtepMAC: string } }).BackendData.VtepMAC;
      // traffic into and out of the switching node, counted across the switch
      const other = net!.nodeName((i % 3) + 1);
      const pods = net!.topo.pods;
      const pings = [
        continuousPing(pods.get(`${other}-a`)!, pods.get(`${name}-a`)!.ip),
        continuousPing(pods.get(`${name}-b`)!, pods.get(`${other}-b`)!.ip),
      ];
      await stopFlanneld(flanneld.get(name)!);
      net!.startAgent(name);
      const now = await waitFor(
        `${name}'s lease taken over by Weft`,
        async () => {
          const s = await keyState(leaseKey(name));
          return s && s.lease !== was.lease ? s : undefined;
        },
        90_000,
      );
      await matrix(`after switching ${name}`);
      const [sent, lost] = (await Promise.all(pings.map((p) => p.stop()))).reduce(
        ([s, l], r) => [s + r.sent, l + (r.sent - r.received)],
        [0, 0],
      );
      t.diagnostic(`switch of ${name}: ${lost} of ${sent} pings lost (5/s, both directions)`);
      const lease = JSON.parse(now.value) as {
        PublicIP: string;
        BackendData: { VtepMAC: string; VNI: number };
      };
      assert.equal(lease.BackendData.VtepMAC, mac, "the node keeps flanneld's VTEP MAC");
      assert.equal(lease.PublicIP, net!.topo.nodes.get(name)!.underlayIP);
      const blocks = (await net!.store.list("IPAMBlock")).items.filter((b) => b.spec.affinity === name);
      assert.deepEqual(
        blocks.map((b) => b.spec.cidr),
        [subnets.get(name)],
      );
      assert.equal((await keyState(`${PREFIX}/config`))?.value, config);
    });
});
