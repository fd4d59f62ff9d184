import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { testCluster } from "../../devenv/cluster.js";
import { ClusterNetwork } from "../../devenv/clusternet.js";
import { waitFor } from "../../devenv/procs.js";
import { ip, nsExec, requireRoot } from "../../devenv/topology.js";

// Issue 14, natOutgoing: pods reach a host outside the cluster (behind the underlay router). With
// natOutgoing (the default) it sees the node's address; with it off, the pod's own (and a route
// back exists only because this test adds one). The agent owns one nftables table and nothing else.

function requireNft(): void {
  try {
    execFileSync("nft", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("the NAT test needs nft (Debian nftables): apt-get install nftables, or make tools");
  }
}

const nft = (ns: string, args: string[]) => nsExec(ns, "nft", args);
const hasTable = (ns: string) =>
  nft(ns, ["list", "table", "inet", "weft"]).then(
    () => true,
    () => false,
  );

describe("outgoing NAT to an outside host", { timeout: 300_000 }, () => {
  requireRoot("the dataplane tests");
  requireNft();
  const cp = testCluster().state;
  const id = `wn${process.pid}`;
  const runDir = join(tmpdir(), `weft-${id}`);
  const net = new ClusterNetwork({ id, runDir, cp, topology: { outside: true } });
  const pool = `${id}-pool`;
  const n = (i: number) => net.nodeName(i);
  const node = (i: number) => net.topo.nodes.get(n(i))!;
  const pod = (i: number) => net.topo.pods.get(`${id}-p${i}`)!;
  // a table of someone else's, which the agent must never touch
  const FOREIGN =
    "table inet bystander {\n chain out {\n  type filter hook output priority 0; policy accept;\n  ip daddr 203.0.113.99 accept\n }\n}\n";
  let foreign = "";

  before(async () => {
    await net.createPool(net.pool(pool, `10.${process.pid % 60}.0.0/16`, "vxlan"));
    await net.up(2);
    writeFileSync(join(runDir, "bystander.nft"), FOREIGN);
    await nft(node(1).ns, ["-f", join(runDir, "bystander.nft")]);
    foreign = await nft(node(1).ns, ["list", "table", "inet", "bystander"]);
    net.startWhoami();
    await net.waitConverged(90_000);
    for (const i of [1, 2]) await net.addPod(n(i), `${id}-p${i}`);
  });
  after(async () => {
    await net.destroy();
    rmSync(runDir, { recursive: true, force: true });
  });

  it("natOutgoing (default): the outside host sees the node's address, and the node reports its table", async () => {
    for (const i of [1, 2]) {
      const seen = await waitFor(
        "an answer from the outside host",
        () => net.whoami(pod(i)).catch(() => undefined),
        30_000,
        200,
      );
      assert.equal(seen, node(i).underlayIP, `pod on ${n(i)} seen as ${seen}`);
      assert.ok(await hasTable(node(i).ns));
    }
    const nns = await net.store.get("NodeNetworkStatus", n(1));
    assert.deepEqual(nns?.status?.nat, { table: "inet weft", pools: [pool] });
    assert.equal(nns?.status?.conditions?.find((c) => c.type === "OutgoingNAT")?.reason, "Applied");
  });

  it("survives an agent restart without a gap: every connection meanwhile is masqueraded", async () => {
    const seen: string[] = [];
    let stop = false;
    const asking = (async () => {
      while (!stop) seen.push(await net.whoami(pod(1)).catch((e: Error) => `failed: ${e.message}`));
    })();
    await net.stopAgent(n(1), "SIGKILL");
    assert.ok(await hasTable(node(1).ns), "the table outlives its agent");
    const restartedAt = new Date();
    net.startAgent(n(1));
    await net.waitConverged(90_000, { at: restartedAt, nodes: [n(1)] });
    stop = true;
    await asking;
    assert.ok(seen.length > 0);
    console.log(`# ${seen.length} connections to the outside host across the agent's restart`);
    assert.deepEqual(
      [...new Set(seen)],
      [node(1).underlayIP],
      `answers across the restart: ${seen.join(", ")}`,
    );
  });

  it("natOutgoing off: the table goes, the outside host sees the pod (with a route back added here)", async () => {
    await net.store.mutate("IPPool", pool, (p) => ({ ...p, spec: { ...p.spec, natOutgoing: false } }));
    await waitFor(
      "every node's NAT table to go",
      async () => ((await hasTable(node(1).ns)) || (await hasTable(node(2).ns)) ? undefined : true),
      30_000,
      200,
    );
    // only this test gives the router a way back to a pod address
    await ip(["-n", net.topo.underlayNs, "route", "add", `${pod(1).ip}/32`, "via", node(1).underlayIP]);
    assert.equal(await net.whoami(pod(1)), pod(1).ip);
    await waitFor(
      "the status to say no NAT is needed",
      async () => {
        const s = (await net.store.get("NodeNetworkStatus", n(1)))?.status;
        return s?.nat === undefined &&
          s?.conditions?.find((c) => c.type === "OutgoingNAT")?.reason === "NotNeeded"
          ? true
          : undefined;
      },
      30_000,
      250,
    );
  });

  it("never touched the other table", async () => {
    assert.equal(await nft(node(1).ns, ["list", "table", "inet", "bystander"]), foreign);
  });
});
