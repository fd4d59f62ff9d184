import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import type { BGPConfiguration } from "../../api/index.js";
import { testCluster } from "../../devenv/cluster.js";
import { ClusterNetwork } from "../../devenv/clusternet.js";
import { startTestEtcd } from "../../devenv/containers/etcd.js";
import type { EtcdServer } from "../../devenv/etcd.js";
import { waitFor } from "../../devenv/procs.js";
import { RouteWatch } from "../../devenv/route-watch.js";
import { repoRoot } from "../../devenv/tools.js";
import { ip, requireRoot } from "../../devenv/topology.js";
import { bgpRoutes, bgpTestCIDR, requireBird, waitAllRoutes, waitSessions } from "./bgp-support.js";

const run = promisify(execFile);

// Issue 16: weft-controller chooses two route reflectors in two zones and keeps them: a
// reflector's node goes away, the replacement from its zone joins before anything else moves, and
// no kernel loses a route meanwhile (watched with `ip monitor` in every namespace). BFD turned on
// through graceful restarts without a route lost; a client's link cut is noticed by BFD and its
// blocks leave every kernel. The BGPConfiguration is a singleton, so this cluster keeps its weft.dev
// objects in an etcd of its own (other test files run beside it with theirs in the apiserver).

const ZONE = "topology.kubernetes.io/zone";

describe("BGP: automatic route reflectors and BFD", { timeout: 900_000 }, () => {
  requireRoot("the BGP dataplane tests");
  requireBird();
  const cp = testCluster().state;
  const id = `wr${process.pid}`;
  const runDir = join(tmpdir(), `weft-${id}`);
  let etcd: EtcdServer;
  let net: ClusterNetwork;
  const n = (i: number) => net.nodeName(i);
  const N = 5;
  const zones = ["a", "a", "b", "b", "c"];

  const config = async (): Promise<BGPConfiguration> =>
    (await net.store.get("BGPConfiguration", "default")) as BGPConfiguration;
  const patchSpec = (spec: Partial<BGPConfiguration["spec"]>) =>
    net.store.mutate("BGPConfiguration", "default", (c) => ({ ...c, spec: { ...c.spec, ...spec } }));
  /** The reflectors in status once they are `want` (node:state, sorted). */
  const waitReflectors = (want: string[], timeoutMs = 120_000) =>
    waitFor(
      `reflectors ${want.join(", ")}`,
      async () => {
        const got = ((await config()).status?.routeReflectors ?? []).map((r) => `${r.node}:${r.state}`);
        return got.join() === want.join() ? got : undefined;
      },
      timeoutMs,
      250,
    ).catch(async (err: Error) => {
      throw new Error(
        `${err.message}; status: ${JSON.stringify((await config()).status)}\n${net.logTails(10)}`,
      );
    });
  /** Every kernel must keep every other live node's blocks. */
  const watchRoutes = async (except: string[]) => {
    const blocks = (await net.store.list("IPAMBlock")).items;
    const expected = () => {
      const out = new Map<string, Set<string>>();
      for (const node of net.topo.nodes.values()) {
        if (except.includes(node.name)) continue;
        const want = blocks
          .filter(
            (b) =>
              b.spec.affinity !== node.name &&
              net.topo.nodes.has(b.spec.affinity) &&
              !except.includes(b.spec.affinity),
          )
          .map((b) => b.spec.cidr);
        out.set(node.ns, new Set(want));
      }
      return out;
    };
    const watch = new RouteWatch({
      expected,
      protocol: "bird",
      checkMs: 500,
      read: async (ns) => {
        const name = [...net.topo.nodes.values()].find((x) => x.ns === ns)?.name as string;
        return new Set((await bgpRoutes(net, name)).keys());
      },
    });
    watch.start();
    return watch;
  };

  before(async () => {
    etcd = await startTestEtcd();
    net = new ClusterNetwork({ id, runDir, cp, datastore: "etcd", etcd });
    await net.createPool(net.pool(`${id}-pool`, bgpTestCIDR(31), "bgp"));
    await net.up(N);
    for (let i = 1; i <= N; i++)
      await net.core.patchNode(
        { name: n(i), body: { metadata: { labels: { [ZONE]: zones[i - 1] } } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    await net.waitConverged(120_000);
  });
  after(async () => {
    try {
      await net?.destroy();
    } finally {
      await etcd?.stop();
      rmSync(runDir, { recursive: true, force: true });
    }
  });

  it("chooses two reflectors in two zones: 2N-3 sessions, every route learned, the choice and its reason in status and weftctl", async () => {
    await net.store.create("BGPConfiguration", {
      apiVersion: "weft.dev/v1alpha1",
      kind: "BGPConfiguration",
      metadata: { name: "default", labels: net.labels },
      spec: { routeReflectors: { count: 2, zoneLabel: ZONE } },
    });
    // zones a and b have the fewest (none), and in each the first node by age and name
    await waitReflectors([`${n(1)}:Active`, `${n(3)}:Active`]);
    const rr = new Set([n(1), n(3)]);
    await waitSessions(net, (x) => (rr.has(x) ? N - 1 : 2));
    await waitAllRoutes(net);
    const c = await waitFor("configuration status counts every session Established", async () => {
      const x = await config();
      return x.status?.establishedSessions === 2 * N - 3 && x.status.expectedSessions === 2 * N - 3
        ? x
        : undefined;
    });
    assert.deepEqual(
      c.status?.routeReflectors?.map((r) => [r.node, r.zone, r.source, r.clusterID]),
      [
        [n(1), "a", "Automatic", "255.0.0.1"],
        [n(3), "b", "Automatic", "255.0.0.1"],
      ],
    );
    assert.match(c.status?.routeReflectors?.[0]?.reason ?? "", /zone a had 0 reflector\(s\)/);
    assert.equal(c.status?.conditions?.find((x) => x.type === "Ready")?.status, "True");
    assert.equal(c.status?.conditions?.find((x) => x.type === "RouteReflectors")?.status, "True");
    const { stdout } = await run(
      process.execPath,
      [join(repoRoot, "dist/cli/main.js"), "--kubeconfig", cp.kubeconfig, "bgp", "topology"],
      {
        env: { ...process.env, ...etcd.env() },
      },
    );
    assert.match(
      stdout,
      new RegExp(`^reflector ${n(1)}: Active: chosen \\(count 2\\): zone a had 0 reflector`, "m"),
    );
    assert.match(stdout, /mesh off; reflectors: /);
  });

  it("turns BFD on by graceful restarts without a route lost, and a client's cut link leaves every kernel's routes within BFD's time", async () => {
    const watch = await watchRoutes([]);
    await patchSpec({ bfd: { enabled: true, intervalMilliseconds: 100, multiplier: 3 } });
    const rr = new Set([n(1), n(3)]);
    await waitSessions(
      net,
      (x) => (rr.has(x) ? N - 1 : 2),
      120_000,
      (s) => s.bfd === "Up",
    );
    const lost = await watch.stop();
    assert.deepEqual(lost, [], "turning BFD on loses no route in any kernel");
    for (let i = 1; i <= N; i++)
      assert.match(
        readFileSync(join(runDir, n(i), "bird", "bird.conf"), "utf8"),
        /bfd \{ interval 100 ms; multiplier 3; \};/,
      );
    const logs = readFileSync(join(runDir, `agent-${n(2)}.log`), "utf8");
    assert.match(logs, /BIRD restarted gracefully/);

    const victim = n(5);
    const blocks = (await net.store.list("IPAMBlock")).items
      .filter((b) => b.spec.affinity === victim)
      .map((b) => b.spec.cidr);
    assert.ok(blocks.length > 0);
    const others = [...net.topo.nodes.keys()].filter((x) => x !== victim);
    const t0 = performance.now();
    await ip(["-n", net.topo.nodes.get(victim)?.ns as string, "link", "set", "eth0", "down"]);
    await waitFor(
      `${victim}'s blocks withdrawn from every other kernel`,
      async () => {
        for (const o of others) {
          const r = await bgpRoutes(net, o);
          if (blocks.some((b) => r.has(b))) return undefined;
        }
        return true;
      },
      30_000,
      20,
    );
    console.log(
      `# BFD: link of ${victim} cut -> its routes gone from ${others.length} kernels in ${Math.round(performance.now() - t0)} ms (100 ms x 3)`,
    );
    await ip(["-n", net.topo.nodes.get(victim)?.ns as string, "link", "set", "eth0", "up"]);
    await waitSessions(
      net,
      (x) => (rr.has(x) ? N - 1 : 2),
      120_000,
      (s) => s.bfd === "Up",
    );
    await waitAllRoutes(net);
  });

  it("replaces a reflector whose node goes away by one from its zone, and no kernel loses a route", async () => {
    const gone = n(1);
    const watch = await watchRoutes([gone]);
    const t0 = performance.now();
    await net.removeNode(gone);
    await waitReflectors([`${n(2)}:Active`, `${n(3)}:Active`]);
    const rr = new Set([n(2), n(3)]);
    await waitSessions(net, (x) => (rr.has(x) ? N - 2 : 2), 120_000);
    const ms = Math.round(performance.now() - t0);
    const lost = await watch.stop();
    console.log(
      `# reflector ${gone} gone -> ${n(2)} Active and every session up in ${ms} ms; ${watch.checks} full checks`,
    );
    assert.deepEqual(lost, [], "no kernel lost a route");
    const c = await config();
    assert.match(
      c.status?.routeReflectors?.[0]?.reason ?? "",
      new RegExp(`replaces ${gone} \\(node is gone\\)`),
    );
    await waitAllRoutes(net);
  });

  it("names the field when the count exceeds the nodes or no node has the zone label, or BFD is out of range; bird.conf stays valid", async () => {
    await patchSpec({
      routeReflectors: { count: 9, zoneLabel: "example.com/rack" },
      bfd: { enabled: true, intervalMilliseconds: 1 },
    });
    const c = await waitFor("conditions naming the fields", async () => {
      const x = await config();
      const rr = x.status?.conditions?.find((k) => k.type === "RouteReflectors");
      return rr?.status === "False" && x.metadata.generation === x.status?.observedGeneration ? x : undefined;
    });
    const rr = c.status?.conditions?.find((k) => k.type === "RouteReflectors");
    assert.equal(rr?.reason, "NotEnoughNodes");
    assert.match(rr?.message ?? "", /spec\.routeReflectors\.count: asks for 9 reflectors but only 4/);
    assert.match(
      rr?.message ?? "",
      /spec\.routeReflectors\.zoneLabel: no BGP node has the label example\.com\/rack/,
    );
    const invalid = c.status?.conditions?.find((k) => k.type === "Invalid");
    assert.equal(invalid?.status, "True");
    assert.match(invalid?.message ?? "", /bfd\.intervalMilliseconds: 1 is out of range/);
    for (const x of net.topo.nodes.keys()) {
      const conf = join(runDir, x, "bird", "bird.conf");
      assert.doesNotMatch(readFileSync(conf, "utf8"), /interval 1 ms/);
      execFileSync("bird", ["-p", "-c", conf]);
    }
    // with BFD valid again, every node reflects (4 of the 9 asked for): a mesh of reflectors
    await patchSpec({ bfd: { enabled: false } });
    await waitSessions(net, () => N - 2, 180_000);
    await waitAllRoutes(net);
  });
});
