import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { testCluster } from "../../devenv/cluster.js";
import { ClusterNetwork, formatConnectivity } from "../../devenv/clusternet.js";
import { waitFor } from "../../devenv/procs.js";
import { ip, nsExec, requireRoot } from "../../devenv/topology.js";

// Issue 14, CrossSubnet and MTU: three nodes on two underlay subnets joined by a router (nodes 1
// and 3 on 192.0.2.0/24, node 2 on 203.0.113.0/24), one CrossSubnet VXLAN pool. Inside a subnet
// routes go direct, across it through VXLAN, and the tunnel's packet counters prove which path
// traffic took. Then node 1's underlay MTU changes and its agent follows without a restart.

interface Route {
  dst: string;
  gateway?: string;
  dev?: string;
}

describe("CrossSubnet: direct inside an underlay subnet, VXLAN across; MTU follows the underlay", {
  timeout: 300_000,
}, () => {
  requireRoot("the dataplane tests");
  const cp = testCluster().state;
  const id = `wx${process.pid}`;
  const runDir = join(tmpdir(), `weft-${id}`);
  const net = new ClusterNetwork({ id, runDir, cp, topology: { subnets: 2 } });
  const pool = `${id}-pool`;
  const n = (i: number) => net.nodeName(i);
  const node = (i: number) => net.topo.nodes.get(n(i))!;
  const pod = (i: number) => net.topo.pods.get(`${id}-p${i}`)!;
  const routes = async (i: number) =>
    JSON.parse(await ip(["-n", node(i).ns, "-json", "route", "show", "proto", "87"])) as Route[];
  const blockOf = async (i: number) =>
    (await net.store.list("IPAMBlock")).items.find((b) => b.spec.affinity === n(i))!.spec.cidr;
  /** Packets the node's VXLAN device sent and received so far. */
  const tunnel = async (i: number) => {
    const [l] = JSON.parse(
      await ip(["-n", node(i).ns, "-s", "-json", "link", "show", "weft.vxlan"]),
    ) as Array<{
      stats64: { tx: { packets: number }; rx: { packets: number } };
    }>;
    return { tx: l!.stats64.tx.packets, rx: l!.stats64.rx.packets };
  };
  const ping = (from: number, to: number) =>
    nsExec(pod(from).ns, "ping", ["-c", "3", "-i", "0.2", "-W", "2", pod(to).ip]);

  before(async () => {
    await net.createPool(
      net.pool(pool, `10.${192 + (process.pid % 60)}.0.0/16`, "vxlan", { crossSubnet: true }),
    );
    await net.up(3);
    await net.waitConverged(90_000);
    for (const i of [1, 2, 3]) await net.addPodViaCni(n(i), `${id}-p${i}`);
  });
  after(async () => {
    await net.destroy();
    rmSync(runDir, { recursive: true, force: true });
  });

  it("every node lists its path per peer: Direct inside its subnet, VXLAN across", async () => {
    assert.deepEqual([node(1).subnet, node(2).subnet, node(3).subnet], [0, 1, 0]);
    const want: Record<number, Record<string, string>> = {
      1: { [n(2)]: "VXLAN", [n(3)]: "Direct" },
      2: { [n(1)]: "VXLAN", [n(3)]: "VXLAN" },
      3: { [n(1)]: "Direct", [n(2)]: "VXLAN" },
    };
    for (const i of [1, 2, 3]) {
      await waitFor(
        `${n(i)} to report its CrossSubnet paths`,
        async () => {
          const paths = (await net.store.get("NodeNetworkStatus", n(i)))?.status?.peerPaths ?? [];
          const got = Object.fromEntries(paths.map((p) => [p.node, p.path]));
          return JSON.stringify(got) === JSON.stringify(want[i]) ? true : undefined;
        },
        60_000,
        250,
      );
      const subnets = (await net.store.get("RouteIntent", n(i)))?.spec.underlaySubnets;
      assert.deepEqual(subnets, [i === 2 ? "203.0.113.0/24" : "192.0.2.0/24"]);
    }
    const r1 = await routes(1);
    const block2 = await blockOf(2);
    const block3 = await blockOf(3);
    assert.deepEqual(
      r1.filter((r) => r.dst === block3).map((r) => [r.gateway, r.dev]),
      [[node(3).underlayIP, "eth0"]],
      "node 3 directly over the shared subnet",
    );
    const vtep2 = (await net.store.get("RouteIntent", n(2)))!.spec.vtep!.ip;
    assert.deepEqual(
      r1.filter((r) => r.dst === block2).map((r) => [r.gateway, r.dev]),
      [[vtep2, "weft.vxlan"]],
      "node 2 through the tunnel",
    );
    const all = await net.waitConnectivity(30_000);
    assert.equal(all.ok, all.total, formatConnectivity(all));
    assert.equal(all.total, 6);
  });

  it("traffic inside the subnet bypasses the tunnel both ways; across the router it goes through it", async () => {
    const t1 = await tunnel(1);
    const t3 = await tunnel(3);
    await ping(1, 3);
    await ping(3, 1);
    const u1 = await tunnel(1);
    const u3 = await tunnel(3);
    // 3 echoes and 3 replies each way: had they used a tunnel, each counter would move by 3 or
    // more; below that only a stray IPv6 control packet of the device itself can have counted
    for (const [what, d] of Object.entries({
      "node 1 sent": u1.tx - t1.tx,
      "node 1 received": u1.rx - t1.rx,
      "node 3 sent": u3.tx - t3.tx,
      "node 3 received": u3.rx - t3.rx,
    }))
      assert.ok(d < 3, `${what} ${d} packets through its tunnel while pinging inside the subnet`);
    const t2 = await tunnel(2);
    await ping(1, 2);
    await ping(2, 3);
    const v1 = await tunnel(1);
    const v2 = await tunnel(2);
    assert.ok(v1.tx - u1.tx >= 3 && v1.rx - u1.rx >= 3, "node 1 <-> node 2 went through node 1's tunnel");
    assert.ok(
      v2.tx - t2.tx >= 6 && v2.rx - t2.rx >= 6,
      "node 2 sent and received its replies through its tunnel",
    );
  });

  it("MTU: an underlay MTU change is followed without a restart (VXLAN device, status, new pods)", async () => {
    const before = (await net.store.get("NodeNetworkStatus", n(1)))?.status?.underlay;
    assert.deepEqual(
      { mtu: before?.mtu, vxlanMTU: before?.vxlanMTU, podMTU: before?.podMTU },
      { mtu: 1500, vxlanMTU: 1450, podMTU: 1450 },
    );
    await ip(["-n", node(1).ns, "link", "set", "eth0", "mtu", "1400"]);
    await waitFor(
      "node 1 to report the new MTUs",
      async () => {
        const u = (await net.store.get("NodeNetworkStatus", n(1)))?.status?.underlay;
        return u?.mtu === 1400 && u.vxlanMTU === 1350 && u.podMTU === 1350 ? true : undefined;
      },
      30_000,
      250,
    );
    assert.match(await ip(["-n", node(1).ns, "link", "show", "weft.vxlan"]), / mtu 1350 /);
    const fresh = await net.addPodViaCni(n(1), `${id}-p1b`);
    assert.match(await ip(["-n", fresh.ns, "link", "show", "eth0"]), / mtu 1350 /);
    const r = await net.waitConnectivity(30_000);
    assert.equal(r.ok, r.total, formatConnectivity(r));
  });
});
