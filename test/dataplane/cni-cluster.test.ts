import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { testCluster } from "../../devenv/cluster.js";
import { ClusterNetwork, formatConnectivity } from "../../devenv/clusternet.js";
import { waitFor } from "../../devenv/procs.js";
import { ip, requireRoot } from "../../devenv/topology.js";

// Issue 6 end to end: pods made by weft-cni (run exactly as a runtime runs it) on three nodes,
// addressed by the real IPAM, reach each other over VXLAN and then host-gw; DEL gives back.
describe("weft-cni on a three-node cluster network", { timeout: 300_000 }, () => {
  requireRoot("the dataplane tests");
  const cp = testCluster().state;
  const id = `wn${process.pid}`;
  const runDir = join(tmpdir(), `weft-${id}`);
  const net = new ClusterNetwork({ id, runDir, cp });
  const pool = `${id}-pool`;
  const pods = [1, 2, 3].flatMap((i) => [`${id}-p${i}a`, `${id}-p${i}b`]);

  before(async () => {
    await net.createPool(net.pool(pool, `100.${4 + (process.pid % 60)}.0.0/16`, "vxlan"));
    await net.up(3);
    await net.waitConverged(90_000);
    for (const p of pods) await net.addPodViaCni(net.nodeName(Number(p.at(-2))), p);
  });
  after(async () => {
    await net.destroy();
    rmSync(runDir, { recursive: true, force: true });
  });

  it("pods reach each other over VXLAN", async () => {
    const result = await net.connectivity();
    assert.equal(result.total, 30);
    assert.equal(result.ok, result.total, formatConnectivity(result));
  });

  it("every pod's address is in its node's IPAMBlock with the pod's namespace/name", async () => {
    const blocks = (await net.store.list("IPAMBlock")).items.filter((b) => b.spec.pool === pool);
    for (const name of pods) {
      const pod = net.topo.pods.get(name)!;
      const block = blocks.find((b) => b.spec.allocations.some((a) => a.pod === name));
      assert.ok(block, `no allocation for ${name}`);
      assert.equal(block.spec.affinity, pod.node.name);
      const a = block.spec.allocations.find((x) => x.pod === name)!;
      assert.equal(a.namespace, "default");
      assert.equal(a.handle, `${pod.containerID}.eth0`);
    }
  });

  it("pods still reach each other after the pool switches to host-gw", async () => {
    await net.store.mutate("IPPool", pool, (p) => ({ ...p, spec: { ...p.spec, encapsulation: "HostGW" } }));
    await waitFor(
      "host-gw routes on node 1",
      async () => {
        const r = JSON.parse(
          await ip(["-n", net.topo.nodes.get(net.nodeName(1))!.ns, "-json", "route"]),
        ) as Array<{
          gateway?: string;
          dev?: string;
        }>;
        return r.some((x) => x.gateway === "192.0.2.12" && x.dev === "eth0") ? true : undefined;
      },
      30_000,
    );
    await net.waitSwitched("HostGW");
    const result = await net.connectivity();
    assert.equal(result.ok, result.total, formatConnectivity(result));
  });

  it("DEL releases the address and removes the host side; a second DEL succeeds", async () => {
    const name = pods[0]!;
    const pod = net.topo.pods.get(name)!;
    await net.deletePodViaCni(name);
    const held = (await net.store.list("IPAMBlock")).items
      .flatMap((b) => b.spec.allocations)
      .filter((a) => a.pod === name);
    assert.deepEqual(held, []);
    const links = await ip(["-n", pod.node.ns, "link", "show"]);
    assert.ok(!links.includes(pod.hostVeth), `${pod.hostVeth} is still there`);
    const again = await net.cni("DEL", pod.node.ns, pod.containerID!, pod.ns, "default", name);
    assert.deepEqual(again, {});
  });
});
