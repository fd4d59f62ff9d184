import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import type { IPPool } from "../../api/index.js";
import { testCluster } from "../../devenv/cluster.js";
import { ClusterNetwork, formatConnectivity } from "../../devenv/clusternet.js";
import { waitFor } from "../../devenv/procs.js";
import { ip, nsExec, requireRoot } from "../../devenv/topology.js";
import { requireBird } from "./bgp-support.js";

// Issue 14, dual stack: an IPv6 pool joins a running IPv4 cluster, then pods with both families
// cross nodes over IPv6 with VXLAN (IPv6 VTEP, NDP entry, the one FDB entry over the IPv4
// underlay), host-gw and BGP (both over the nodes' IPv6 underlay addresses). Kernel state is read
// with iproute2.

interface Route {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  flags?: string[];
}

describe("dual stack across nodes: VXLAN, host-gw, BGP", { timeout: 600_000 }, () => {
  requireRoot("the dataplane tests");
  requireBird();
  const cp = testCluster().state;
  const id = `wd${process.pid}`;
  const runDir = join(tmpdir(), `weft-${id}`);
  const net = new ClusterNetwork({
    id,
    runDir,
    cp,
    topology: { stack: "dual", outside: true },
    podFamilies: ["ipv4", "ipv6"],
  });
  const v4 = `${id}-v4`;
  const v6 = `${id}-v6`;
  const n = (i: number) => net.nodeName(i);
  const node = (i: number) => net.topo.nodes.get(n(i))!;
  const pod = (i: number) => net.topo.pods.get(`${id}-p${i}`)!;
  const routes6 = async (i: number, proto: string) =>
    JSON.parse(await ip(["-n", node(i).ns, "-6", "-json", "route", "show", "proto", proto])) as Route[];
  const blockOf = async (i: number, family: 4 | 6) =>
    (await net.store.list("IPAMBlock")).items.find(
      (b) => b.spec.affinity === n(i) && b.spec.cidr.includes(":") === (family === 6),
    )?.spec.cidr;
  const everyFamily = async () => {
    for (const family of [4, 6] as const) {
      const r = await net.waitConnectivity(30_000, family);
      assert.equal(r.ok, r.total, formatConnectivity(r, family));
      assert.equal(r.total, 2);
    }
  };
  const switchTo = async (encapsulation: IPPool["spec"]["encapsulation"]) => {
    for (const p of [v4, v6])
      await net.store.mutate("IPPool", p, (x) => ({ ...x, spec: { ...x.spec, encapsulation } }));
  };

  before(async () => {
    await net.createPool(net.pool(v4, `10.${64 + (process.pid % 60)}.0.0/16`, "vxlan"));
    await net.up(2);
    await net.waitConverged(90_000);
    net.startWhoami();
  });
  after(async () => {
    await net.destroy();
    rmSync(runDir, { recursive: true, force: true });
  });

  it("an IPv6 pool applied to the running IPv4 cluster converges, every node Ready", async () => {
    await net.createPool(net.pool(v6, `fd00:${(process.pid % 0xffff).toString(16)}::/56`, "vxlan"));
    await waitFor(
      "every RouteIntent with an IPv6 VTEP",
      async () => {
        for (const i of [1, 2])
          if (!(await net.store.get("RouteIntent", n(i)))?.spec.vtep?.ipv6) return undefined;
        return true;
      },
      60_000,
      250,
    );
    await net.waitConverged(60_000);
    const vtep2 = (await net.store.get("RouteIntent", n(2)))!.spec.vtep!;
    const block2 = await blockOf(2, 6);
    const r = (await routes6(1, "87")).find((x) => x.dst === block2);
    assert.equal(r?.gateway, vtep2.ipv6, "via the remote IPv6 VTEP");
    assert.equal(r?.dev, "weft.vxlan");
    assert.ok(r?.flags?.includes("onlink"));
    const ndp = await ip(["-n", node(1).ns, "-6", "neigh", "show", vtep2.ipv6!, "dev", "weft.vxlan"]);
    assert.match(ndp, new RegExp(`lladdr ${vtep2.mac} PERMANENT`));
    const fdb = (await nsExec(node(1).ns, "bridge", ["fdb", "show", "dev", "weft.vxlan"]))
      .split("\n")
      .filter((l) => l.startsWith(vtep2.mac) && l.includes(" dst "));
    assert.deepEqual(
      fdb.map((l) => /dst (\S+)/.exec(l)?.[1]),
      [node(2).underlayIP],
      "one FDB entry, over the IPv4 underlay",
    );
  });

  it("VXLAN: pods with both families reach each other over IPv4 and IPv6, and the outside host masqueraded", async () => {
    for (const i of [1, 2]) await net.addPodViaCni(n(i), `${id}-p${i}`);
    assert.equal(pod(1).ips?.length, 2);
    await everyFamily();
    assert.equal(await net.whoami(pod(1), 6), node(1).underlayIPv6, "IPv6 leaves as the node's address");
  });

  it("a garbled dual-stack annotation is a condition naming it; no intent or kernel changes", async () => {
    const before = await net.store.get("RouteIntent", n(2));
    const routesBefore = await ip(["-n", node(1).ns, "route", "show", "proto", "87"]);
    const annotate = (value: string | null) =>
      net.core.patchNode(
        { name: n(2), body: { metadata: { annotations: { "weft.dev/underlay-ip": value } } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    await annotate(`${node(2).underlayIP},not-an-address`);
    try {
      const ready = await waitFor(
        "RouteIntent Ready=False naming the annotation",
        async () => {
          const c = (await net.store.get("RouteIntent", n(2)))?.status?.conditions?.find(
            (x) => x.type === "Ready",
          );
          return c?.reason === "InvalidUnderlayAddress" ? c : undefined;
        },
        30_000,
        250,
      );
      assert.match(ready.message, /weft\.dev\/underlay-ip: "not-an-address" is not an IP address/);
      const after = await net.store.get("RouteIntent", n(2));
      assert.equal(after?.metadata.generation, before?.metadata.generation, "the intent keeps its last spec");
      assert.equal(await ip(["-n", node(1).ns, "route", "show", "proto", "87"]), routesBefore);
      await everyFamily();
    } finally {
      await annotate(null);
    }
    await waitFor(
      "RouteIntent Ready again",
      async () =>
        (await net.store.get("RouteIntent", n(2)))?.status?.conditions?.find((x) => x.type === "Ready")
          ?.status === "True" || undefined,
      30_000,
      250,
    );
  });

  it("host-gw: IPv6 via the other node's IPv6 underlay address", async () => {
    await switchTo("HostGW");
    await net.waitSwitched("HostGW", 90_000);
    const block2 = await blockOf(2, 6);
    const route = (await routes6(1, "87")).find((x) => x.dst === block2);
    assert.equal(route?.gateway, node(2).underlayIPv6);
    assert.equal(route?.dev, "eth0");
    await everyFamily();
  });

  it("BGP: IPv6 learned through BIRD's IPv6 channel, via the IPv6 underlay", async () => {
    await switchTo("BGP");
    await net.waitSwitched("BGP", 90_000);
    await net.waitBgpRoutes(120_000);
    const block2 = await blockOf(2, 6);
    const route = (await routes6(1, "12")).find((x) => x.dst === block2);
    assert.equal(route?.gateway, node(2).underlayIPv6);
    assert.equal((await routes6(1, "87")).filter((x) => x.dst === block2).length, 0, "no agent route left");
    await everyFamily();
  });
});
