import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BGPPeer } from "../../api/bgp.js";
import { InvalidError } from "../../datastore/store.js";
import { testCluster } from "../../devenv/cluster.js";
import { ClusterNetwork } from "../../devenv/clusternet.js";
import { startDetached, waitFor } from "../../devenv/procs.js";
import { ip, nsExec, requireRoot } from "../../devenv/topology.js";
import { allLogs, bgpTestCIDR, requireBird, waitSessions } from "./bgp-support.js";

// Issue 5 acceptance: an external BGP speaker (GoBGP, Debian gobgpd) in its own namespace on the
// underlay peers with every node through a BGPPeer whose MD5 password comes from a Secret; hostile
// values end up as clear conditions; passwords never show in logs, events or status.

function requireGoBGP(): void {
  for (const cmd of ["gobgpd", "gobgp"]) {
    try {
      execFileSync(cmd, ["--version"], { stdio: "pipe" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        assert.fail(`${cmd} not found: install GoBGP (apt-get install gobgpd)`);
    }
  }
}

function kernelHasMd5(): boolean {
  try {
    return /\btcp_md5_do_add\b/.test(readFileSync("/proc/kallsyms", "utf8"));
  } catch {
    return true;
  }
}

describe("BGP: external GoBGP peer with an MD5 password; hostile input", { timeout: 600_000 }, () => {
  requireRoot("the BGP dataplane tests");
  requireBird();
  requireGoBGP();
  const cp = testCluster().state;
  const id = `wx${process.pid}`;
  const runDir = join(tmpdir(), `weft-${id}`);
  const net = new ClusterNetwork({ id, runDir, cp });
  const N = 3;
  const extIP = "192.0.2.200";
  const extNs = `${id}-gobgp`;
  const md5 = kernelHasMd5();
  const password = `s3cr;et}{"x${process.pid}`.replace('"', "#");
  const hostilePassword = `evil"; } protocol bgp pwned { neighbor 6.6.6.6 as 666; }\n#${process.pid}`;
  const secretNs = "default";
  const secretName = `${id}-bgp`;
  const hostileSecret = `${id}-hostile`;
  const peerName = `${id}-gobgp`;
  const apiPort = 50051;

  const peer = (name: string, spec: BGPPeer["spec"]): BGPPeer => ({
    apiVersion: "weft.dev/v1alpha1",
    kind: "BGPPeer",
    metadata: { name, labels: net.labels },
    spec: { nodeSelector: { matchLabels: net.labels }, ...spec },
  });

  before(async () => {
    if (!md5) console.log("# kernel lacks TCP MD5: the GoBGP session runs without a password");
    await net.createPool(net.pool(`${id}-pool`, bgpTestCIDR(17), "bgp"));
    await net.up(N);
    // the external speaker: its own namespace on the underlay bridge
    await ip(["netns", "add", extNs]);
    await ip(["-n", extNs, "link", "set", "lo", "up"]);
    await ip([
      "-n",
      extNs,
      "link",
      "add",
      "eth0",
      "type",
      "veth",
      "peer",
      "name",
      "portx",
      "netns",
      net.topo.underlayNs,
    ]);
    await ip(["-n", net.topo.underlayNs, "link", "set", "portx", "master", "br0", "up"]);
    await ip(["-n", extNs, "addr", "add", `${extIP}/24`, "dev", "eth0"]);
    await ip(["-n", extNs, "link", "set", "eth0", "up"]);
    const nodes = [...net.topo.nodes.values()];
    const toml = [
      "[global.config]",
      "  as = 65001",
      `  router-id = "${extIP}"`,
      `  local-address-list = ["${extIP}"]`,
      ...nodes.flatMap((n) => [
        "[[neighbors]]",
        "  [neighbors.config]",
        `    neighbor-address = "${n.underlayIP}"`,
        "    peer-as = 64512",
        ...(md5 ? [`    auth-password = ${JSON.stringify(password)}`] : []),
      ]),
    ].join("\n");
    const conf = join(runDir, "gobgpd.toml");
    writeFileSync(conf, `${toml}\n`, { mode: 0o600 });
    net.topo.pids.push(
      startDetached(
        "ip",
        [
          "netns",
          "exec",
          extNs,
          "gobgpd",
          "-f",
          conf,
          "--api-hosts",
          `127.0.0.1:${apiPort}`,
          "--pprof-disable",
        ],
        join(runDir, "gobgpd.out"),
      ).pid,
    );
    await net.core.createNamespacedSecret({
      namespace: secretNs,
      body: { metadata: { name: secretName }, stringData: { password } },
    });
    await net.core.createNamespacedSecret({
      namespace: secretNs,
      body: { metadata: { name: hostileSecret }, stringData: { password: hostilePassword } },
    });
    await net.waitConverged(120_000);
  });
  after(async () => {
    for (const name of [peerName, `${id}-hostile`, `${id}-self`])
      await net.store.delete("BGPPeer", name).catch(() => undefined);
    for (const name of [secretName, hostileSecret])
      await net.core.deleteNamespacedSecret({ name, namespace: secretNs }).catch(() => undefined);
    await net.destroy();
    rmSync(runDir, { recursive: true, force: true });
  });

  it("GoBGP receives every block over MD5-protected sessions; the sessions show in status", async () => {
    await net.store.create(
      "BGPPeer",
      peer(peerName, {
        peerIP: extIP,
        asNumber: 65001,
        ...(md5 ? { password: { name: secretName, namespace: secretNs, key: "password" } } : {}),
      }),
    );
    // the mesh among 3 nodes (2 each) plus the external peer
    const all = await waitSessions(net, () => N);
    for (const [node, sessions] of all) {
      const ext = sessions.find((s) => s.peer === peerName);
      assert.ok(ext, `${node} lists the external peer`);
      assert.equal(ext.peerIP, extIP);
      assert.equal(ext.asNumber, 65001);
      assert.equal(ext.routesImported, 0, "nothing is imported from an external peer");
    }
    for (const n of net.topo.nodes.keys()) {
      const nns = await net.store.get("NodeNetworkStatus", n);
      const pw = nns?.status?.conditions?.find((c) => c.type === "BGPPasswords");
      if (md5) assert.equal(pw?.status, "True", JSON.stringify(pw));
    }
    const blocks = (await net.store.list("IPAMBlock")).items
      .filter((b) => net.topo.nodes.has(b.spec.affinity))
      .map((b) => b.spec.cidr);
    assert.equal(blocks.length, N);
    await waitFor(
      "GoBGP's RIB holds every block",
      async () => {
        const rib = JSON.parse(
          await nsExec(extNs, "gobgp", ["-p", String(apiPort), "global", "rib", "-j"]),
        ) as Record<string, unknown>;
        return blocks.every((b) => b in rib) ? true : undefined;
      },
      60_000,
      500,
    );
    // Ready once the controller has seen every session Established in the nodes' reports
    const status = await waitFor("BGPPeer status", async () => {
      const p = await net.store.get("BGPPeer", peerName);
      const ready = p?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
      return p?.status?.expectedSessions === N && ready ? p.status : undefined;
    });
    assert.equal(status.establishedSessions, N);
    assert.deepEqual(status.selectedNodes, [...net.topo.nodes.keys()].sort());
    assert.equal(status.conditions?.find((c) => c.type === "Ready")?.status, "True");
    assert.equal(status.conditions?.find((c) => c.type === "Invalid")?.status, "False");
  });

  it("a selector holding quotes, braces or newlines is refused by the apiserver, naming the field", async () => {
    await assert.rejects(
      net.store.create(
        "BGPPeer",
        peer(`${id}-badsel`, {
          peerIP: "192.0.2.201",
          asNumber: 65002,
          nodeSelector: { matchLabels: { 'a"}': "x;\n}" } },
        }),
      ),
      (err: unknown) => err instanceof InvalidError && /nodeSelector/.test((err as Error).message),
    );
  });

  it("a hostile password or a peer on a node's address gets a clear condition, and BIRD's config stays intact", async () => {
    await net.store.create(
      "BGPPeer",
      peer(`${id}-hostile`, {
        peerIP: "192.0.2.201",
        asNumber: 65002,
        password: { name: hostileSecret, namespace: secretNs, key: "password" },
      }),
    );
    const node1 = net.nodeName(1);
    await net.store.create(
      "BGPPeer",
      peer(`${id}-self`, { peerIP: net.topo.nodes.get(node1)?.underlayIP as string, asNumber: 65003 }),
    );
    const hostile = await waitFor("the hostile peer's condition", async () => {
      const p = await net.store.get("BGPPeer", `${id}-hostile`);
      const c = p?.status?.conditions?.find((x) => x.type === "Invalid");
      return c?.status === "True" ? p : undefined;
    });
    const ready = hostile.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "False");
    assert.equal(ready?.reason, "InvalidPassword");
    assert.match(ready?.message ?? "", /double quote/);
    const self = await waitFor("the self-peer's condition", async () => {
      const p = await net.store.get("BGPPeer", `${id}-self`);
      return p?.status?.conditions?.find((x) => x.type === "Invalid")?.status === "True" ? p : undefined;
    });
    assert.match(
      self.status?.conditions?.find((c) => c.type === "Ready")?.message ?? "",
      /is node .*use peerSelector/,
    );
    // every agent leaves the session out, says why, and keeps the others up
    await waitFor("agents report the refused password", async () => {
      for (const n of net.topo.nodes.keys()) {
        const bgp = (await net.store.get("NodeNetworkStatus", n))?.status?.conditions?.find(
          (c) => c.type === "BGP",
        );
        if (bgp?.reason !== "Degraded" || !/double quote/.test(bgp.message)) return undefined;
      }
      return true;
    });
    for (const n of net.topo.nodes.keys()) {
      const conf = readFileSync(join(runDir, n, "bird", "bird.conf"), "utf8");
      assert.ok(
        !conf.includes("pwned") && !conf.includes("6.6.6.6"),
        `${n}'s bird.conf holds no injected text`,
      );
      execFileSync("bird", ["-p", "-c", join(runDir, n, "bird", "bird.conf")]);
    }
    await net.store.delete("BGPPeer", `${id}-hostile`);
    await net.store.delete("BGPPeer", `${id}-self`);
    await waitSessions(net, () => N);
  });

  it("passwords never appear in logs, events or status", async () => {
    const secrets = [password, hostilePassword, "pwned"];
    const logs = allLogs(net);
    const events = JSON.stringify(await net.core.listEventForAllNamespaces());
    const statuses = JSON.stringify([
      ...(await net.store.list("NodeNetworkStatus")).items,
      ...(await net.store.list("BGPPeer")).items,
    ]);
    for (const s of secrets) {
      assert.ok(!logs.includes(s), "no password in the agents' or the controller's logs");
      assert.ok(!events.includes(s), "no password in events");
      assert.ok(!statuses.includes(s), "no password in any status");
    }
    assert.ok(logs.includes("BIRD"), "the logs were really read");
  });
});
