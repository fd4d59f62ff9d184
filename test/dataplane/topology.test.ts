import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { testCluster } from "../../devenv/cluster.js";
import { repoRoot, tool } from "../../devenv/tools.js";
import { ip, NetnsTopology, nsExec, requireRoot } from "../../devenv/topology.js";

// The harness itself: namespaces on an underlay bridge, pods behind veths, and the test apiserver
// reachable from inside a node namespace without any packet leaving loopback.
describe("netns topology harness", () => {
  requireRoot("the dataplane tests");
  const cluster = testCluster();
  const runDir = mkdtempSync(join(tmpdir(), "weft-topo-"));
  const topo = new NetnsTopology(`wt${process.pid}`, runDir);

  before(async () => {
    await topo.createUnderlay();
    await topo.addNode("n1");
    await topo.addNode("n2");
    await topo.addPod("n1", "p1", "10.250.1.2");
    await topo.addPod("n2", "p2", "10.250.2.2");
    const port = Number(new URL(cluster.state.server).port);
    await topo.bridgeApiserver(port, join(repoRoot, "dist", "devenv", "forward.js"));
  });
  after(async () => {
    await topo.destroy();
    rmSync(runDir, { recursive: true, force: true });
  });

  it("reaches the apiserver from inside a node namespace", async () => {
    const n1 = topo.nodes.get("n1")!;
    let out = "";
    for (let i = 0; i < 50 && !out; i++) {
      out = await nsExec(n1.ns, tool("kubectl"), [
        "--kubeconfig",
        cluster.kubeconfig,
        "get",
        "ns",
        "kube-system",
        "-o",
        "name",
      ]).catch(async () => {
        await new Promise((r) => setTimeout(r, 100));
        return "";
      });
    }
    assert.equal(out.trim(), "namespace/kube-system");
  });

  it("carries pod traffic between nodes once routes exist, and not before", async () => {
    const [n1, n2] = [topo.nodes.get("n1")!, topo.nodes.get("n2")!];
    const [p1, p2] = [topo.pods.get("p1")!, topo.pods.get("p2")!];
    assert.equal(await topo.ping(p1, p2.ip, 1), false, "no route yet");
    await ip(["-n", n1.ns, "route", "add", "10.250.2.0/24", "via", n2.underlayIP]);
    await ip(["-n", n2.ns, "route", "add", "10.250.1.0/24", "via", n1.underlayIP]);
    assert.equal(await topo.ping(p1, p2.ip), true);
    assert.equal(await topo.ping(p2, p1.ip), true);
  });

  it("names every namespace with its prefix", () => {
    assert.ok(topo.namespaces.every((n) => n.startsWith(`wt${process.pid}-`)));
    assert.equal(topo.namespaces.length, 5);
  });
});
