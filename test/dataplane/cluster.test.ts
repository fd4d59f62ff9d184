import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { testCluster } from "../../devenv/cluster.js";
import { ClusterNetwork, formatConnectivity } from "../../devenv/clusternet.js";
import { sleep, waitFor } from "../../devenv/procs.js";
import { ip, nsExec, requireRoot } from "../../devenv/topology.js";

// Issue 4 end to end: the controller publishes RouteIntents, one agent per node (each inside its
// node's namespace) programs the kernel, pods on three nodes reach each other. Kernel state is
// read with iproute2, never with the agent's own code.
const WEFT_PROTO = "87"; // 0x57, the agent's route protocol

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  flags?: string[];
}

async function routes(ns: string): Promise<IpRoute[]> {
  return JSON.parse(await ip(["-n", ns, "-json", "route", "show"])) as IpRoute[];
}

async function pingLoss(
  fromNs: string,
  to: string,
  count: number,
  intervalSec: number,
): Promise<{ sent: number; received: number }> {
  const out = await nsExec(fromNs, "ping", [
    "-q",
    "-i",
    String(intervalSec),
    "-c",
    String(count),
    "-W",
    "1",
    to,
  ]).catch((e: { stdout?: string }) => e.stdout ?? "");
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0) };
}

describe("cluster network: controller + agents in namespaces", { timeout: 300_000 }, () => {
  requireRoot("the dataplane tests");
  const cp = testCluster().state;
  const id = `wc${process.pid}`;
  const runDir = join(tmpdir(), `weft-${id}`);
  const net = new ClusterNetwork({ id, runDir, cp });
  const cidr = `100.${64 + (process.pid % 60)}.0.0/16`;
  const n = (i: number) => net.nodeName(i);
  const nsOf = (i: number) => net.topo.nodes.get(n(i))!.ns;

  before(async () => {
    await net.createPool(net.pool(`${id}-pool`, cidr, "vxlan"));
    await net.up(3);
    // a route Weft does not own, which it must leave alone
    await ip(["-n", nsOf(1), "route", "add", "198.51.100.0/24", "via", "192.0.2.99", "proto", "static"]);
    await net.waitConverged(90_000);
    for (let i = 1; i <= 3; i++) {
      await net.addPod(n(i), `${id}-p${i}a`);
      await net.addPod(n(i), `${id}-p${i}b`);
    }
  });
  after(async () => {
    await net.destroy();
    rmSync(runDir, { recursive: true, force: true });
  });

  it("VXLAN: every pod reaches every other pod", async () => {
    const result = await net.connectivity();
    assert.equal(result.ok, result.total, formatConnectivity(result));
    assert.equal(result.total, 30);
  });

  it("VXLAN: one route per remote block via its VTEP, one neighbor and one FDB entry per remote node", async () => {
    const r = (await routes(nsOf(1))).filter((x) => x.protocol === WEFT_PROTO && x.dev === "weft.vxlan");
    const remoteBlocks = (await net.store.list("IPAMBlock")).items.filter((b) =>
      [n(2), n(3)].includes(b.spec.affinity),
    );
    assert.deepEqual(r.map((x) => x.dst).sort(), remoteBlocks.map((b) => b.spec.cidr).sort());
    assert.ok(r.every((x) => x.flags?.includes("onlink")));
    const neigh = JSON.parse(
      await ip(["-n", nsOf(1), "-json", "neigh", "show", "dev", "weft.vxlan"]),
    ) as Array<{ state: string[] }>;
    assert.equal(neigh.filter((e) => e.state.includes("PERMANENT")).length, 2);
    const fdb = JSON.parse(
      await nsExec(nsOf(1), "bridge", ["-json", "fdb", "show", "dev", "weft.vxlan"]),
    ) as Array<{ dst?: string }>;
    assert.deepEqual(
      fdb
        .filter((e) => e.dst)
        .map((e) => e.dst)
        .sort(),
      ["192.0.2.12", "192.0.2.13"],
    );
    const ownBlackholes = (await routes(nsOf(1))).filter((x) => x.protocol === WEFT_PROTO && x.dst && !x.dev);
    assert.ok(ownBlackholes.length >= 1, "a blackhole for the node's own block");
  });

  it("repairs an owned route, neighbor and FDB entry deleted by hand", async () => {
    const ns = nsOf(1);
    const [victim] = (await routes(ns)).filter((x) => x.protocol === WEFT_PROTO && x.dev === "weft.vxlan");
    assert.ok(victim);
    const vtep2 = (await net.store.get("RouteIntent", n(2)))!.spec.vtep!;
    const vtep2ip = vtep2.ip!;
    const t0 = Date.now();
    await ip(["-n", ns, "route", "del", victim.dst, "proto", WEFT_PROTO]);
    await ip(["-n", ns, "neigh", "del", vtep2ip, "dev", "weft.vxlan"]);
    await nsExec(ns, "bridge", ["fdb", "del", vtep2.mac, "dev", "weft.vxlan", "dst", "192.0.2.12"]);
    await waitFor(
      "the deleted entries to come back",
      async () => {
        const back = (await routes(ns)).some((x) => x.dst === victim.dst && x.protocol === WEFT_PROTO);
        const neigh = (await ip(["-n", ns, "neigh", "show", vtep2ip, "dev", "weft.vxlan"])).includes(
          vtep2.mac,
        );
        const fdb = (await nsExec(ns, "bridge", ["fdb", "show", "dev", "weft.vxlan"])).includes(
          `${vtep2.mac} dst 192.0.2.12`,
        );
        return back && neigh && fdb ? true : undefined;
      },
      // below the agents' 60 s full resync: in time means the netlink event path repaired it
      30_000,
      50,
    );
    console.log(`# drift repaired in ${Date.now() - t0} ms`);
  });

  it("keeps traffic flowing while agents are killed and restarted", async () => {
    const from = net.topo.pods.get(`${id}-p1a`)!;
    const to = net.topo.pods.get(`${id}-p2a`)!;
    const pinging = pingLoss(from.ns, to.ip, 100, 0.05);
    await sleep(500);
    await net.stopAgent(n(1), "SIGKILL");
    await net.stopAgent(n(2), "SIGKILL");
    const restartedAt = new Date();
    net.startAgent(n(1));
    net.startAgent(n(2));
    const { sent, received } = await pinging;
    assert.equal(sent, 100);
    assert.equal(received, sent, `lost ${sent - received} of ${sent} replies across the agent restarts`);
    await net.waitConverged(60_000, { at: restartedAt, nodes: [n(1), n(2)] });
  });

  it("leaves entries it does not own untouched", async () => {
    const foreign = (await routes(nsOf(1))).find((x) => x.dst === "198.51.100.0/24");
    assert.equal(foreign?.protocol, "static");
    assert.equal(foreign?.gateway, "192.0.2.99");
  });

  it("switching the pool to host-gw converges: routes via underlay addresses, pods still reach each other", async () => {
    await net.store.mutate("IPPool", `${id}-pool`, (p) => ({
      ...p,
      spec: { ...p.spec, encapsulation: "HostGW" },
    }));
    await waitFor(
      "host-gw routes in node 1's kernel",
      async () => {
        const r = (await routes(nsOf(1))).filter((x) => x.protocol === WEFT_PROTO && x.gateway);
        const viaUnderlay = r.filter((x) => x.gateway === "192.0.2.12" || x.gateway === "192.0.2.13");
        const vxlanLeft = r.filter((x) => x.dev === "weft.vxlan");
        return viaUnderlay.length >= 2 && vxlanLeft.length === 0 ? true : undefined;
      },
      30_000,
      100,
    );
    await net.waitSwitched("HostGW");
    const result = await net.connectivity();
    assert.equal(result.ok, result.total, formatConnectivity(result));
  });

  it("a removed node's entries disappear from every other kernel", async () => {
    const gone = n(3);
    const blocks3 = (await net.store.list("IPAMBlock")).items
      .filter((b) => b.spec.affinity === gone)
      .map((b) => b.spec.cidr);
    assert.ok(blocks3.length > 0);
    await net.stopAgent(gone);
    await net.core.deleteNode({ name: gone });
    await waitFor(
      "node 3's routes to leave nodes 1 and 2",
      async () => {
        for (const i of [1, 2]) {
          const dsts = (await routes(nsOf(i))).filter((x) => x.protocol === WEFT_PROTO).map((x) => x.dst);
          if (blocks3.some((b) => dsts.includes(b))) return undefined;
        }
        return true;
      },
      30_000,
      100,
    );
    assert.equal(await net.store.get("RouteIntent", gone), undefined);
  });
});
