import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { RouteIntent } from "../../api/index.js";
import { KubernetesStore } from "../../datastore/kubernetes.js";
import { testCluster } from "../../devenv/cluster.js";
import { ClusterNetwork, formatConnectivity } from "../../devenv/clusternet.js";
import { startTestEtcd } from "../../devenv/containers/etcd.js";
import type { EtcdServer } from "../../devenv/etcd.js";
import { waitFor } from "../../devenv/procs.js";
import { requireRoot } from "../../devenv/topology.js";

// Issue 7 end to end: the whole control plane on the etcd datastore. The weft.dev objects live in
// an etcd of this test's own (TLS, client certificates), bridged into every node namespace; Node
// and Pod objects stay in the apiserver. Pods made by weft-cni reach each other over VXLAN, and
// etcdctl (an independent reader) finds the RouteIntents and Flannel's leases in etcd.
describe("a three-node cluster network on the etcd datastore", { timeout: 300_000 }, () => {
  requireRoot("the dataplane tests");
  const cp = testCluster().state;
  const id = `wd${process.pid}`;
  const runDir = join(tmpdir(), `weft-${id}`);
  const pool = `${id}-pool`;
  const pods = [1, 2, 3].flatMap((i) => [`${id}-p${i}a`, `${id}-p${i}b`]);
  let etcd: EtcdServer | undefined;
  let net: ClusterNetwork | undefined;

  /** One etcd value through etcdctl, parsed; undefined when the key is absent. */
  async function etcdJSON<T>(key: string): Promise<T | undefined> {
    const out = (await etcd!.etcdctl(["get", key, "--print-value-only"])).trim();
    return out ? (JSON.parse(out) as T) : undefined;
  }

  before(async () => {
    etcd = await startTestEtcd();
    net = new ClusterNetwork({ id, runDir, cp, datastore: "etcd", etcd });
    // Flannel's layout: one /24 per node, so the controller mirrors it as Flannel leases too
    await net.createPool(
      net.pool(pool, `100.${64 + (process.pid % 60)}.0.0/16`, "vxlan", {
        allocation: "NodeSubnet",
        blockSize: 24,
      }),
    );
    await net.up(3);
    await net.waitConverged(90_000);
    for (const p of pods) await net.addPodViaCni(net.nodeName(Number(p.at(-2))), p);
  });
  after(async () => {
    try {
      await net?.destroy();
    } finally {
      await etcd?.stop();
      rmSync(runDir, { recursive: true, force: true });
    }
  });

  it("pods made by weft-cni reach each other over VXLAN", async () => {
    const result = await net!.connectivity();
    assert.equal(result.total, 30);
    assert.equal(result.ok, result.total, formatConnectivity(result));
  });

  it("every node's RouteIntent is in etcd (read with etcdctl), and none in the apiserver", async () => {
    const keys = (await etcd!.etcdctl(["get", "/weft/v1alpha1/routeintents/", "--prefix", "--keys-only"]))
      .split("\n")
      .filter(Boolean)
      .sort();
    assert.deepEqual(
      keys,
      [1, 2, 3].map((i) => `/weft/v1alpha1/routeintents/${net!.nodeName(i)}`),
    );
    const blocks = (await net!.store.list("IPAMBlock")).items.filter((b) => b.spec.pool === pool);
    const kube = new KubernetesStore(net!.kc);
    for (const node of net!.topo.nodes.values()) {
      const ri = await etcdJSON<RouteIntent>(`/weft/v1alpha1/routeintents/${node.name}`);
      assert.ok(ri, `no RouteIntent for ${node.name} in etcd`);
      assert.equal(ri.kind, "RouteIntent");
      assert.equal(ri.spec.node, node.name);
      assert.equal(ri.spec.underlayIP, node.underlayIP);
      assert.equal(ri.spec.encapsulation, "VXLAN");
      const own = blocks.filter((b) => b.spec.affinity === node.name).map((b) => b.spec.cidr);
      assert.equal(own.length, 1, `${node.name} holds exactly one /24 (NodeSubnet)`);
      assert.deepEqual(
        ri.spec.routes.map((r) => r.dst),
        own,
      );
      assert.equal(ri.spec.fdb[0]?.dst, node.underlayIP, "one FDB entry towards the node's underlay address");
      assert.equal(
        await kube.get("RouteIntent", node.name),
        undefined,
        "the apiserver holds no RouteIntent in etcd mode",
      );
    }
  });

  it("every node's subnet is a Flannel lease in etcd with the node's PublicIP", async () => {
    const blocks = (await net!.store.list("IPAMBlock")).items.filter((b) => b.spec.pool === pool);
    for (const b of blocks) {
      const node = net!.topo.nodes.get(b.spec.affinity)!;
      // the controller writes leases a moment after the blocks, debounced
      const lease = await waitFor(`a Flannel lease for ${b.spec.cidr}`, () =>
        etcdJSON<{ PublicIP: string; BackendType: string }>(
          `/coreos.com/network/subnets/${b.spec.cidr.replace("/", "-")}`,
        ),
      );
      assert.equal(lease.PublicIP, node.underlayIP);
      assert.equal(lease.BackendType, "vxlan");
    }
    assert.equal(blocks.length, 3);
  });
});
