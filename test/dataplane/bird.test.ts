import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BirdProcess } from "../../agent/bgp/bird-process.js";
import type { BGPPeer } from "../../api/bgp.js";
import { ANNOTATIONS } from "../../api/meta.js";
import { parseShowProtocols, sessionStatuses } from "../../bgp/birdc.js";
import { type RenderResult, ROUTE_PROTOCOL_BGP, renderBirdConfig } from "../../bgp/render.js";
import { computeTopology, type Topology, type TopologyNode } from "../../bgp/topology.js";
import { secretRefKey } from "../../bgp/validate.js";
import { sleep, startDetached, stopPid, waitFor } from "../../devenv/procs.js";

/**
 * Real BIRD 2 in network namespaces on a bridge underlay (the bridge lives in its own namespace;
 * every address is inside namespaces this file creates). Each node runs BIRD through
 * agent/bgp/bird-process.ts with a configuration rendered by bgp/render.ts.
 */

function requireTool(cmd: string, hint: string): void {
  try {
    execFileSync(cmd, ["--version"], { stdio: "pipe" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") assert.fail(`${cmd} not found: ${hint}`);
  }
}

function ip(args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

const POOL = "10.244.0.0/16";
const blockOf = (i: number) => `10.244.${i}.0/26`;
const underlay = (i: number) => `10.77.0.${i}`;

/** N node namespaces (+ optional extra hosts) on one bridge; everything removed by clean(). */
class Underlay {
  readonly prefix: string;
  readonly namespaces: string[] = [];
  readonly dir: string;
  readonly birds = new Map<string, BirdProcess>();
  readonly pids: number[] = [];

  constructor(tag: string) {
    this.prefix = `wb${process.pid}${tag}`;
    this.dir = mkdtempSync(join(tmpdir(), `weft-bird-${process.pid}-${tag}-`));
  }

  ns(i: number | string): string {
    return `${this.prefix}-${i}`;
  }

  create(hosts: Array<{ id: number | string; addr: string }>): void {
    const br = this.ns("br");
    ip(["netns", "add", br]);
    this.namespaces.push(br);
    ip(["-n", br, "link", "add", "br0", "type", "bridge"]);
    ip(["-n", br, "link", "set", "br0", "up"]);
    hosts.forEach(({ id, addr }, k) => {
      const ns = this.ns(id);
      ip(["netns", "add", ns]);
      this.namespaces.push(ns);
      ip(["-n", br, "link", "add", `v${k}`, "type", "veth", "peer", "name", "eth0", "netns", ns]);
      ip(["-n", br, "link", "set", `v${k}`, "master", "br0", "up"]);
      ip(["-n", ns, "link", "set", "lo", "up"]);
      ip(["-n", ns, "addr", "add", `${addr}/24`, "dev", "eth0"]);
      ip(["-n", ns, "link", "set", "eth0", "up"]);
    });
  }

  bird(i: number, opts: { minBackoffMs?: number } = {}): BirdProcess {
    let b = this.birds.get(String(i));
    if (!b) {
      b = new BirdProcess({
        dir: join(this.dir, `node${i}`),
        wrap: ["ip", "netns", "exec", this.ns(i)],
        minBackoffMs: opts.minBackoffMs ?? 300,
        maxBackoffMs: 2000,
      });
      this.birds.set(String(i), b);
    }
    return b;
  }

  /** Kernel routes BIRD installed in a node's namespace, by destination. */
  bgpRoutes(i: number): Map<string, { gateway?: string; protocol: string }> {
    const out = JSON.parse(
      ip(["-n", this.ns(i), "-json", "route", "show", "proto", String(ROUTE_PROTOCOL_BGP)]),
    );
    return new Map(
      (out as Array<{ dst: string; gateway?: string; protocol: string }>).map((r) => [r.dst, r]),
    );
  }

  async clean(): Promise<void> {
    for (const b of this.birds.values()) await b.stop(2000).catch(() => undefined);
    for (const pid of this.pids) await stopPid(pid, 2000).catch(() => undefined);
    for (const ns of this.namespaces.reverse()) {
      try {
        ip(["netns", "del", ns]);
      } catch {
        /* already gone */
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function topoNodes(n: number, reflectors: Record<number, string> = {}): TopologyNode[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    const ann: Record<string, string> = {};
    if (reflectors[i]) ann[ANNOTATIONS.routeReflectorClusterID] = reflectors[i];
    return { name: `node${i}`, labels: { idx: String(i) }, annotations: ann, underlayIPv4: underlay(i) };
  });
}

function renderNode(
  t: Topology,
  i: number,
  extra: { blocks?: string[]; passwords?: Record<string, string> } = {},
) {
  const node = t.nodes[`node${i}`];
  assert.ok(node, `node${i} in topology`);
  return renderBirdConfig({
    node,
    blocks: extra.blocks ?? [blockOf(i)],
    poolCIDRs: [POOL],
    ...(extra.passwords ? { passwords: extra.passwords } : {}),
  });
}

/** Waits until every rendered session of node i is Established; returns the statuses. */
/** `accept`: more to wait for per session (BIRD feeds exports only after a session is up). */
async function established(
  u: Underlay,
  i: number,
  r: RenderResult,
  accept: (s: ReturnType<typeof sessionStatuses>[number]) => boolean = () => true,
) {
  return waitFor(
    `node${i}: ${r.protocols.length} sessions Established`,
    async () => {
      const st = sessionStatuses(await u.bird(i).status(), r.protocols);
      return st.length === r.protocols.length && st.every((s) => s.state === "Established" && accept(s))
        ? st
        : undefined;
    },
    30000,
    200,
  );
}

/** Cross-check with BIRD's own short table: each rendered protocol's line says Established. */
async function assertTableSaysEstablished(u: Underlay, i: number, r: RenderResult): Promise<void> {
  const text = await u.bird(i).birdc(["show", "protocols"]);
  for (const p of r.protocols) {
    const line = text.split("\n").find((l) => l.startsWith(`${p.name} `));
    assert.ok(line, `birdc show protocols lists ${p.name}`);
    assert.match(line, /\sBGP\s.*\sup\s.*Established/, line);
  }
  assert.equal(parseShowProtocols(text).filter((p) => p.proto === "BGP").length, r.protocols.length);
}

async function routesEverywhere(u: Underlay, nodes: number[], blocks: Map<number, string[]>): Promise<void> {
  for (const i of nodes) {
    const expected = nodes
      .filter((j) => j !== i)
      .flatMap((j) => (blocks.get(j) ?? []).map((b) => [b, j] as const));
    await waitFor(
      `node${i} kernel has ${expected.length} BGP routes`,
      () => {
        const routes = u.bgpRoutes(i);
        return expected.every(([b, j]) => routes.get(b)?.gateway === underlay(j)) ? true : undefined;
      },
      30000,
      200,
    );
    const routes = u.bgpRoutes(i);
    for (const own of blocks.get(i) ?? [])
      assert.ok(!routes.has(own), `node${i} does not learn its own ${own}`);
  }
}

before(() => {
  assert.equal(process.getuid?.(), 0, "dataplane tests need root (network namespaces): run as root");
  requireTool("bird", "apt-get install bird2");
  requireTool("birdc", "apt-get install bird2");
});

describe("BIRD full mesh (3 nodes)", () => {
  const u = new Underlay("m");
  const N = 3;
  const nodes = [1, 2, 3];
  const renders = new Map<number, RenderResult>();
  const blocks = new Map(nodes.map((i) => [i, [blockOf(i)]]));
  let topo: Topology;

  before(() => {
    u.create(nodes.map((i) => ({ id: i, addr: underlay(i) })));
    topo = computeTopology({ nodes: topoNodes(N) });
  });
  after(() => u.clean());

  it("brings up N(N-1)/2 sessions and installs every other node's block with the BGP route protocol", async () => {
    assert.equal(topo.sessions.length, 3);
    for (const i of nodes) {
      const r = renderNode(topo, i);
      renders.set(i, r);
      assert.equal(await u.bird(i).apply(r.config), "started");
    }
    for (const i of nodes) {
      const st = await established(u, i, renders.get(i) as RenderResult);
      assert.deepEqual(
        st.map((s) => s.peer).sort(),
        nodes.filter((j) => j !== i).map((j) => `node${j}`),
      );
      await assertTableSaysEstablished(u, i, renders.get(i) as RenderResult);
    }
    await routesEverywhere(u, nodes, blocks);
    for (const i of nodes) {
      const st = sessionStatuses(await u.bird(i).status(), renders.get(i)?.protocols);
      for (const s of st) {
        assert.equal(s.routesImported, 1, `node${i} imports one block from ${s.peer}`);
        assert.equal(s.routesExported, 1, `node${i} exports only its own block to ${s.peer}`);
      }
    }
    const text = ip(["-n", u.ns(1), "route", "show", blockOf(2)]);
    assert.match(text, /proto bird/);
  });

  it("reloads a new block without dropping any session", async () => {
    const before = new Map<number, Map<string, string | undefined>>();
    for (const i of nodes) {
      const st = sessionStatuses(await u.bird(i).status(), renders.get(i)?.protocols);
      before.set(i, new Map(st.map((s) => [s.peerIP, s.since])));
    }
    blocks.set(1, [blockOf(1), "10.244.101.0/26"]);
    const r1 = renderNode(topo, 1, { blocks: blocks.get(1) as string[] });
    assert.equal(await u.bird(1).apply(r1.config), "reconfigured");
    assert.equal(await u.bird(1).apply(r1.config), "unchanged");
    renders.set(1, r1);
    await routesEverywhere(u, nodes, blocks);
    for (const i of nodes) {
      const st = await established(u, i, renders.get(i) as RenderResult);
      for (const s of st)
        assert.equal(s.since, before.get(i)?.get(s.peerIP), `node${i} -> ${s.peer} kept its session`);
    }
  });

  it("refuses a configuration BIRD cannot parse and keeps running the old one", async () => {
    const pid = u.bird(2).pid;
    await assert.rejects(u.bird(2).apply("router id 1.2.3.4;\nprotocol bgp {"), /BIRD refused/);
    assert.equal(u.bird(2).pid, pid);
    assert.match(readFileSync(u.bird(2).configPath, "utf8"), /protocol bgp node_/);
    await established(u, 2, renders.get(2) as RenderResult);
  });

  it("restarts a killed BIRD; peers keep its routes meanwhile (graceful restart)", async () => {
    // a slow first restart so that the window in which node2 is down can be observed
    const b2 = u.bird(2);
    const oldPid = b2.pid as number;
    (b2 as unknown as { backoff: number }).backoff = 3000;
    process.kill(oldPid, "SIGKILL");
    const toNode2 = renders.get(1)?.protocols.find((p) => p.session.peerNode === "node2");
    assert.ok(toNode2);
    await waitFor("node1 sees node2 gone", async () => {
      const st = sessionStatuses(await u.bird(1).status(), [toNode2]);
      return st[0] && st[0].state !== "Established" ? true : undefined;
    });
    assert.equal(u.bgpRoutes(1).get(blockOf(2))?.gateway, underlay(2), "node1 keeps node2's block");
    assert.ok(u.bgpRoutes(2).has(blockOf(1)), "node2's kernel keeps its routes while BIRD is down");
    await waitFor("BIRD restarted", () => (b2.pid && b2.pid !== oldPid ? true : undefined), 20000);
    for (const i of nodes) await established(u, i, renders.get(i) as RenderResult);
    await routesEverywhere(u, nodes, blocks);
  });

  it("a restarted agent adopts the running BIRD instead of restarting it", async () => {
    const old = u.bird(1);
    const pid = old.pid;
    // the old agent is gone: it no longer watches its child
    (old as unknown as { stopping: boolean }).stopping = true;
    const sinceBefore = sessionStatuses(await old.status(), renders.get(1)?.protocols).map((s) => s.since);
    const fresh = new BirdProcess({ dir: join(u.dir, "node1"), wrap: ["ip", "netns", "exec", u.ns(1)] });
    u.birds.set("1", fresh);
    assert.equal(await fresh.apply(renders.get(1)?.config as string), "reconfigured");
    assert.equal(fresh.pid, pid);
    const st = await established(u, 1, renders.get(1) as RenderResult);
    assert.deepEqual(
      st.map((s) => s.since),
      sinceBefore,
    );
  });

  it("reads status slowly once every session is up and unchanged, and fast again after a configure", async () => {
    const old = u.bird(1);
    (old as unknown as { stopping: boolean }).stopping = true;
    let reads = 0;
    const watched = new BirdProcess({
      dir: join(u.dir, "node1"),
      wrap: ["ip", "netns", "exec", u.ns(1)],
      statusIntervalMs: 100,
      statusIdleIntervalMs: 120_000,
      onStatus: () => reads++,
    });
    u.birds.set("1", watched);
    const config = renders.get(1)?.config as string;
    assert.equal(await watched.apply(config), "reconfigured");
    watched.watchStatus();
    // fast reads until two in a row agree that every session is Established, then the idle pace
    await waitFor("the reader to settle", async () => {
      const before = reads;
      await sleep(1000);
      return reads > 1 && reads === before ? true : undefined;
    });
    const settledAt = reads;
    await watched.apply(`${config}\n# touched\n`);
    await waitFor("a read soon after the configure, not after the idle interval", () =>
      reads > settledAt ? true : undefined,
    );
  });
});

describe("BIRD with two route reflectors (5 nodes)", () => {
  const u = new Underlay("r");
  const N = 5;
  const nodes = [1, 2, 3, 4, 5];
  const blocks = new Map(nodes.map((i) => [i, [blockOf(i)]]));
  before(() => u.create(nodes.map((i) => ({ id: i, addr: underlay(i) }))));
  after(() => u.clean());

  it("has 2N-3 sessions, mesh off, and every kernel learns every block through the reflectors", async () => {
    const topo = computeTopology({ nodes: topoNodes(N, { 1: "1.0.0.1", 2: "1.0.0.1" }) });
    assert.equal(topo.meshEnabled, false);
    assert.equal(topo.sessions.length, 2 * N - 3);
    const renders = new Map(nodes.map((i) => [i, renderNode(topo, i)]));
    assert.match(renders.get(1)?.config ?? "", /rr client;/);
    for (const i of nodes) await u.bird(i).apply(renders.get(i)?.config as string);
    let perNode = 0;
    for (const i of nodes) {
      const st = await established(u, i, renders.get(i) as RenderResult);
      perNode += st.length;
      await assertTableSaysEstablished(u, i, renders.get(i) as RenderResult);
      if (i > 2)
        assert.deepEqual(
          st.map((s) => s.peer).sort(),
          ["node1", "node2"],
          "clients peer only with reflectors",
        );
    }
    assert.equal(perNode, 2 * (2 * N - 3));
    await routesEverywhere(u, nodes, blocks);
    // a client's route to another client goes straight to that client, not through the reflector
    assert.equal(u.bgpRoutes(3).get(blockOf(4))?.gateway, underlay(4));
  });
});

describe("GoBGP external peer with an MD5 password", () => {
  const u = new Underlay("g");
  const nodes = [1, 2, 3];
  const extIP = "10.77.0.100";
  const apiPort = 50051;
  let md5 = true;

  before(() => {
    requireTool("gobgpd", "apt-get install gobgpd");
    requireTool("gobgp", "apt-get install gobgpd");
    u.create([...nodes.map((i) => ({ id: i, addr: underlay(i) })), { id: "ext", addr: extIP }]);
    try {
      md5 = /\btcp_md5_do_add\b/.test(readFileSync("/proc/kallsyms", "utf8"));
    } catch {
      md5 = true;
    }
    if (!md5)
      console.log("# kernel lacks TCP MD5 (no tcp_md5_do_add): running the GoBGP session without a password");
  });
  after(() => u.clean());

  it("receives every block, and the session shows in status", async () => {
    const password = "we;ft}{#pw\\x";
    const ref = { name: "bgp-secret", namespace: "kube-system", key: "password" };
    const peers: BGPPeer[] = [
      {
        apiVersion: "weft.dev/v1alpha1",
        kind: "BGPPeer",
        metadata: { name: "gobgp" },
        spec: { peerIP: extIP, asNumber: 65001, ...(md5 ? { password: ref } : {}) },
      },
    ];
    const topo = computeTopology({ nodes: topoNodes(3), peers });
    assert.deepEqual(topo.problems, []);
    assert.equal(topo.peers.gobgp?.expectedSessions, 3);

    const toml = [
      "[global.config]",
      "  as = 65001",
      `  router-id = "${extIP}"`,
      `  local-address-list = ["${extIP}"]`,
      ...nodes.flatMap((i) => [
        "[[neighbors]]",
        "  [neighbors.config]",
        `    neighbor-address = "${underlay(i)}"`,
        "    peer-as = 64512",
        ...(md5 ? [`    auth-password = ${JSON.stringify(password)}`] : []),
      ]),
    ].join("\n");
    const conf = join(u.dir, "gobgpd.toml");
    writeFileSync(conf, `${toml}\n`);
    const gobgpd = startDetached(
      "ip",
      [
        "netns",
        "exec",
        u.ns("ext"),
        "gobgpd",
        "-f",
        conf,
        "--api-hosts",
        `127.0.0.1:${apiPort}`,
        "--pprof-disable",
      ],
      join(u.dir, "gobgpd.log"),
    );
    u.pids.push(gobgpd.pid);

    const passwords = { [secretRefKey(ref)]: password };
    const renders = new Map(nodes.map((i) => [i, renderNode(topo, i, { passwords })]));
    for (const i of nodes) {
      const r = renders.get(i) as RenderResult;
      assert.deepEqual(r.problems, []);
      if (md5) assert.ok(r.config.includes(`password "${password}";`));
      await u.bird(i).apply(r.config);
    }
    for (const i of nodes) {
      const st = await established(
        u,
        i,
        renders.get(i) as RenderResult,
        (s) => s.peer !== "gobgp" || (s.routesExported ?? 0) >= 1,
      );
      const ext = st.find((s) => s.peer === "gobgp");
      assert.ok(ext, `node${i} status lists the external peer`);
      assert.equal(ext.peerIP, extIP);
      assert.equal(ext.asNumber, 65001);
      assert.equal(ext.routesImported, 0, "nothing is imported from external peers");
      assert.ok((ext.routesExported ?? 0) >= 1);
      for (const s of st) assert.ok(!JSON.stringify(s).includes(password), "no password in status");
    }
    const rib = await waitFor(
      "GoBGP RIB has every block",
      () => {
        const out = execFileSync(
          "ip",
          ["netns", "exec", u.ns("ext"), "gobgp", "-p", String(apiPort), "global", "rib", "-j"],
          { encoding: "utf8" },
        );
        const r = JSON.parse(out) as Record<string, unknown>;
        return nodes.every((i) => blockOf(i) in r) ? r : undefined;
      },
      30000,
      300,
    );
    for (const k of Object.keys(rib))
      assert.ok(k.startsWith("10.244."), `only pod blocks are exported, got ${k}`);
    // and the external peer learned nothing into the nodes' kernels beyond the cluster's blocks
    for (const i of nodes) {
      for (const dst of u.bgpRoutes(i).keys()) assert.ok(dst.startsWith("10.244."), dst);
    }

    if (!md5) return;
    // The password is really enforced: with a wrong one node3's session goes down and stays down.
    const wrong = renderNode(topo, 3, { passwords: { [secretRefKey(ref)]: "wrong-password" } });
    assert.equal(await u.bird(3).apply(wrong.config), "reconfigured");
    const ext = wrong.protocols.filter((p) => p.session.kind === "external");
    await waitFor("node3's external session drops", async () => {
      const [s] = sessionStatuses(await u.bird(3).status(), ext);
      return s && s.state !== "Established" ? true : undefined;
    });
    for (let k = 0; k < 12; k++) {
      const [s] = sessionStatuses(await u.bird(3).status(), ext);
      assert.notEqual(s?.state, "Established", "a wrong MD5 password must never establish");
      await new Promise((r) => setTimeout(r, 500));
    }
    await established(u, 1, renders.get(1) as RenderResult);
  });
});
