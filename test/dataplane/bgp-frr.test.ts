import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BGPPeer } from "../../api/index.js";
import { testCluster } from "../../devenv/cluster.js";
import { ClusterNetwork } from "../../devenv/clusternet.js";
import { startTestEtcd } from "../../devenv/containers/etcd.js";
import { type FrrRouter, startFrr } from "../../devenv/containers/frr.js";
import { CONTAINERS_ENV, containersMode } from "../../devenv/containers/mode.js";
import type { EtcdServer } from "../../devenv/etcd.js";
import { waitFor } from "../../devenv/procs.js";
import { requireRoot } from "../../devenv/topology.js";
import { allLogs, bgpTestCIDR, requireBird, waitAllRoutes, waitSessions } from "./bgp-support.js";

// Issue 16: FRR (Debian frr: zebra, bfdd, bgpd, as a container joining a namespace of the test) as an independent BGP
// implementation. As an external eBGP peer with an MD5 password and BFD it must receive every block,
// the Service ranges and the LoadBalancer address of an externalTrafficPolicy Local Service from
// exactly the nodes with a ready endpoint, each with the communities of its class and of the peer;
// a rotated password Secret is in effect within seconds, a deleted one keeps the sessions down
// with a condition naming it. Then FRR as the nodes' route reflector instead of a mesh. The
// BGPConfiguration is a singleton, so weft.dev objects live in an etcd of this test's own.

interface FrrRoute {
  paths: Array<{
    community?: { string: string };
    nexthops: Array<{ ip: string }>;
    peer?: { peerId: string };
  }>;
}

function kernelHasMd5(): boolean {
  return /\btcp_md5_do_add\b/.test(readFileSync("/proc/kallsyms", "utf8"));
}

describe("BGP interop with FRR: external peer with MD5, BFD, Services, communities; FRR as reflector", {
  timeout: 900_000,
  skip: containersMode() === "off" && `${CONTAINERS_ENV}=off: FRR runs only as a container`,
}, () => {
  requireRoot("the BGP dataplane tests");
  requireBird();
  assert.ok(
    kernelHasMd5(),
    "this kernel lacks TCP MD5 (CONFIG_TCP_MD5SIG), which the FRR password test needs",
  );
  const cp = testCluster().state;
  const id = `wf${process.pid}`;
  const runDir = join(tmpdir(), `weft-${id}`);
  let etcd: EtcdServer;
  let net: ClusterNetwork;
  let frr: FrrRouter;
  let frrRR: FrrRouter | undefined;
  const N = 3;
  const frrIP = "192.0.2.200";
  const rrIP = "192.0.2.201";
  const secretNs = "default";
  const secretName = `${id}-frr`;
  const svcName = `${id}-lb`;
  const lbIP = "198.51.100.10";
  const pw1 = `old;pw{${process.pid}`;
  const pw2 = `new}pw${process.pid}`;
  const n = (i: number) => net.nodeName(i);
  const nodeIP = (name: string) => net.topo.nodes.get(name)?.underlayIP as string;
  const peerName = `${id}-frr`;

  const frrConfig = (password: string) =>
    [
      "frr defaults traditional",
      "hostname frr-ext",
      "router bgp 65001",
      ` bgp router-id ${frrIP}`,
      " no bgp ebgp-requires-policy",
      " no bgp network import-check",
      ...[1, 2, 3].flatMap((i) => [
        ` neighbor 192.0.2.${10 + i} remote-as 64512`,
        ` neighbor 192.0.2.${10 + i} password ${password}`,
        ` neighbor 192.0.2.${10 + i} bfd`,
      ]),
      "!",
      "bfd",
      "!",
      "",
    ].join("\n");
  const route = async (r: FrrRouter, prefix: string) =>
    (await r.vtyshJson<FrrRoute | Record<string, never>>(
      `show bgp ipv4 unicast ${prefix} json`,
    )) as Partial<FrrRoute>;
  /** `nextHops(prefix)` from FRR: the peers it has the prefix from. */
  const announcers = async (prefix: string) =>
    [
      ...new Set((await route(frr, prefix)).paths?.map((p) => p.peer?.peerId ?? p.nexthops[0]?.ip) ?? []),
    ].sort();
  const established = async (r: FrrRouter) => {
    const s = await r.vtyshJson<{ ipv4Unicast?: { peers?: Record<string, { state: string }> } }>(
      "show bgp summary json",
    );
    return Object.entries(s.ipv4Unicast?.peers ?? {})
      .filter(([, p]) => p.state === "Established")
      .map(([ip]) => ip)
      .sort();
  };
  const secret = (password: string) => ({ metadata: { name: secretName }, stringData: { password } });
  const extSessions = async (state: (s: string | undefined) => boolean) => {
    for (const x of net.topo.nodes.keys()) {
      const s = (await net.store.get("NodeNetworkStatus", x))?.status?.bgpSessions?.find(
        (y) => y.peer === peerName,
      );
      if (!state(s?.state)) return undefined;
    }
    return true;
  };

  before(async () => {
    etcd = await startTestEtcd();
    net = new ClusterNetwork({ id, runDir, cp, datastore: "etcd", etcd });
    await net.createPool(net.pool(`${id}-pool`, bgpTestCIDR(41), "bgp"));
    await net.up(N);
    const ns = await net.topo.addHost("frr", frrIP);
    frr = await startFrr({ netns: ns, config: frrConfig(pw1) });
    await net.core.createNamespacedSecret({ namespace: secretNs, body: secret(pw1) });
    await net.store.create("BGPConfiguration", {
      apiVersion: "weft.dev/v1alpha1",
      kind: "BGPConfiguration",
      metadata: { name: "default", labels: net.labels },
      spec: {
        serviceClusterIPs: ["10.96.0.0/12"],
        serviceLoadBalancerIPs: ["198.51.100.0/24"],
        communities: {
          blocks: ["64512:100"],
          serviceClusterIPs: ["64512:200"],
          serviceLoadBalancerIPs: ["64512:300"],
        },
      },
    });
    await net.store.create("BGPPeer", {
      apiVersion: "weft.dev/v1alpha1",
      kind: "BGPPeer",
      metadata: { name: peerName, labels: net.labels },
      spec: {
        peerIP: frrIP,
        asNumber: 65001,
        nodeSelector: { matchLabels: net.labels },
        password: { name: secretName, namespace: secretNs, key: "password" },
        bfd: { enabled: true, intervalMilliseconds: 100, multiplier: 3 },
        communities: ["65001:7"],
      },
    } satisfies BGPPeer);
    await net.waitConverged(120_000);
  });
  after(async () => {
    try {
      await frr?.stop();
      await frrRR?.stop();
      await net?.core.deleteNamespacedService({ name: svcName, namespace: secretNs }).catch(() => undefined);
      await net?.kc
        .makeApiClient((await import("@kubernetes/client-node")).DiscoveryV1Api)
        .deleteNamespacedEndpointSlice({ name: svcName, namespace: secretNs })
        .catch(() => undefined);
      await net?.core
        .deleteNamespacedSecret({ name: secretName, namespace: secretNs })
        .catch(() => undefined);
      await net?.destroy();
    } finally {
      await etcd?.stop();
      rmSync(runDir, { recursive: true, force: true });
    }
  });

  it("FRR gets every block and the Service ranges over MD5 sessions with BFD Up, each with its communities; BGPPeer counts them Established", async () => {
    await waitSessions(
      net,
      () => N,
      120_000,
      (s) => s.peer !== peerName || s.bfd === "Up",
    );
    const blocks = (await net.store.list("IPAMBlock")).items.filter((b) =>
      net.topo.nodes.has(b.spec.affinity),
    );
    assert.equal(blocks.length, N);
    await waitFor(
      "FRR's table holds every block and both Service ranges",
      async () => {
        for (const p of [...blocks.map((b) => b.spec.cidr), "10.96.0.0/12", "198.51.100.0/24"])
          if (!(await route(frr, p)).paths?.length) return undefined;
        return true;
      },
      60_000,
      500,
    );
    for (const b of blocks) {
      const r = await route(frr, b.spec.cidr);
      const own = r.paths?.find((p) => p.peer?.peerId === nodeIP(b.spec.affinity));
      assert.equal(own?.community?.string, "64512:100 65001:7", `${b.spec.cidr} from its node`);
    }
    const svc = await route(frr, "10.96.0.0/12");
    assert.deepEqual(
      (await announcers("10.96.0.0/12")).length,
      N,
      "every node announces the cluster IP range",
    );
    assert.equal(svc.paths?.[0]?.community?.string, "64512:200 65001:7");
    assert.equal((await route(frr, "198.51.100.0/24")).paths?.[0]?.community?.string, "64512:300 65001:7");
    const bfd = await frr.vtyshJson<Array<{ peer: string; status: string }>>("show bfd peers json");
    assert.deepEqual(
      bfd
        .filter((p) => p.status === "up")
        .map((p) => p.peer)
        .sort(),
      [1, 2, 3].map((i) => nodeIP(n(i))).sort(),
    );
    const status = await waitFor("BGPPeer status counts 3 of 3 Established", async () => {
      const p = await net.store.get("BGPPeer", peerName);
      return p?.status?.establishedSessions === N && p.status.expectedSessions === N ? p.status : undefined;
    });
    assert.equal(status.conditions?.find((c) => c.type === "Ready")?.status, "True");
  });

  it("a LoadBalancer Service with externalTrafficPolicy Local is announced from exactly the nodes with a ready endpoint", async () => {
    const k8s = await import("@kubernetes/client-node");
    const discovery = net.kc.makeApiClient(k8s.DiscoveryV1Api);
    const created = await net.core.createNamespacedService({
      namespace: secretNs,
      body: {
        metadata: { name: svcName },
        spec: {
          type: "LoadBalancer",
          externalTrafficPolicy: "Local",
          ports: [{ port: 80, protocol: "TCP" }],
        },
      },
    });
    await net.core.replaceNamespacedServiceStatus({
      name: svcName,
      namespace: secretNs,
      body: { ...created, status: { loadBalancer: { ingress: [{ ip: lbIP }] } } },
    });
    const slice = (ready3: boolean) => ({
      metadata: { name: svcName, labels: { "kubernetes.io/service-name": svcName } },
      addressType: "IPv4",
      endpoints: [
        { addresses: ["10.1.0.2"], nodeName: n(2), conditions: { ready: true } },
        { addresses: ["10.1.0.3"], nodeName: n(3), conditions: { ready: ready3 } },
      ],
      ports: [{ port: 80, protocol: "TCP" }],
    });
    await discovery.createNamespacedEndpointSlice({ namespace: secretNs, body: slice(false) });
    const only2 = await waitFor(
      `${lbIP}/32 from ${n(2)} only`,
      async () => {
        const a = await announcers(`${lbIP}/32`);
        return a.join() === nodeIP(n(2)) ? a : undefined;
      },
      60_000,
      250,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: FRR has it from ${JSON.stringify(await announcers(`${lbIP}/32`))}`);
    });
    assert.deepEqual(only2, [nodeIP(n(2))]);
    assert.equal((await route(frr, `${lbIP}/32`)).paths?.[0]?.community?.string, "64512:300 65001:7");
    await discovery.replaceNamespacedEndpointSlice({ name: svcName, namespace: secretNs, body: slice(true) });
    await waitFor(
      `${lbIP}/32 from ${n(2)} and ${n(3)}`,
      async () => {
        const a = await announcers(`${lbIP}/32`);
        return a.join() === [nodeIP(n(2)), nodeIP(n(3))].sort().join() ? true : undefined;
      },
      60_000,
      250,
    );
  });

  it("a rotated password Secret is in effect within seconds: the sessions come back only with the new password on both sides", async () => {
    // FRR first: the sessions drop and stay down while the nodes still hold the old password
    await frr.vtysh(
      "configure terminal",
      "router bgp 65001",
      ...[1, 2, 3].map((i) => `neighbor ${nodeIP(n(i))} password ${pw2}`),
    );
    await waitFor(
      "the sessions down with the old password on the nodes",
      () => extSessions((s) => s !== "Established"),
      60_000,
      250,
    );
    assert.deepEqual(await established(frr), []);
    const t0 = performance.now();
    await net.core.replaceNamespacedSecret({ name: secretName, namespace: secretNs, body: secret(pw2) });
    await waitFor(
      "FRR Established with every node again",
      async () => ((await established(frr)).length === N ? true : undefined),
      60_000,
      100,
    );
    console.log(
      `# rotated password Secret -> FRR Established with all ${N} nodes in ${Math.round(performance.now() - t0)} ms`,
    );
    await waitFor(
      "the nodes report the sessions Established",
      () => extSessions((s) => s === "Established"),
      60_000,
      250,
    );
  });

  it("a deleted Secret keeps the sessions down with a condition naming it; the password never reaches logs or status", async () => {
    await net.core.deleteNamespacedSecret({ name: secretName, namespace: secretNs });
    const cond = await waitFor(
      "every node names the missing Secret",
      async () => {
        let last: string | undefined;
        for (const x of net.topo.nodes.keys()) {
          const c = (await net.store.get("NodeNetworkStatus", x))?.status?.conditions?.find(
            (k) => k.type === "BGPPasswords",
          );
          if (c?.status !== "False" || c.reason !== "SecretUnavailable") return undefined;
          last = c.message;
        }
        return last;
      },
      60_000,
      250,
    );
    assert.match(
      cond,
      new RegExp(`Secret ${secretNs}/${secretName} not found: the sessions that need it stay down`),
    );
    await waitFor(
      "FRR has no session left",
      async () => ((await established(frr)).length === 0 ? true : undefined),
      60_000,
      250,
    );
    const ready = await waitFor("BGPPeer Ready=False naming the Secret", async () => {
      const c = (await net.store.get("BGPPeer", peerName))?.status?.conditions?.find(
        (k) => k.type === "Ready",
      );
      return c?.status === "False" ? c : undefined;
    });
    assert.match(ready.message, new RegExp(`Secret ${secretNs}/${secretName} not found`));
    await net.core.createNamespacedSecret({ namespace: secretNs, body: secret(pw2) });
    await waitFor(
      "FRR Established again",
      async () => ((await established(frr)).length === N ? true : undefined),
      60_000,
      250,
    );
    const logs = allLogs(net);
    const statuses = JSON.stringify([
      ...(await net.store.list("NodeNetworkStatus")).items,
      ...(await net.store.list("BGPPeer")).items,
    ]);
    for (const pw of [pw1, pw2]) {
      assert.ok(!logs.includes(pw), "no password in the agents' or the controller's logs");
      assert.ok(!statuses.includes(pw), "no password in any status");
    }
    assert.match(logs, /BGP password unavailable; its sessions stay down/);
  });

  it("FRR as the nodes' route reflector: with the mesh off every kernel learns every block through it", async () => {
    const ns = await net.topo.addHost("frr-rr", rrIP);
    frrRR = await startFrr({
      netns: ns,
      config: [
        "frr defaults traditional",
        "hostname frr-rr",
        "router bgp 64512",
        ` bgp router-id ${rrIP}`,
        " bgp cluster-id 192.0.2.201",
        ...[1, 2, 3].map((i) => ` neighbor 192.0.2.${10 + i} remote-as 64512`),
        " address-family ipv4 unicast",
        ...[1, 2, 3].map((i) => `  neighbor 192.0.2.${10 + i} route-reflector-client`),
        " exit-address-family",
        "!",
        "",
      ].join("\n"),
    });
    await net.store.mutate("BGPConfiguration", "default", (c) => ({
      ...c,
      spec: { ...c.spec, nodeToNodeMesh: false },
    }));
    await net.store.create("BGPPeer", {
      apiVersion: "weft.dev/v1alpha1",
      kind: "BGPPeer",
      metadata: { name: `${id}-rr`, labels: net.labels },
      spec: { peerIP: rrIP, asNumber: 64512, nodeSelector: { matchLabels: net.labels } },
    });
    // each node: the eBGP FRR and the reflecting FRR, no mesh
    await waitSessions(
      net,
      () => 2,
      120_000,
      (s) => s.peer !== `${id}-rr` || (s.routesImported ?? 0) === N - 1,
    );
    await waitAllRoutes(net);
    assert.deepEqual(await established(frrRR), [1, 2, 3].map((i) => nodeIP(n(i))).sort());
  });
});
