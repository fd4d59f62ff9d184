import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { BGPPeer } from "../../api/index.js";
import { KubernetesStore } from "../../datastore/kubernetes.js";
import { testCluster } from "../harness/cluster.js";

// Every write names its component in managedFields (GitOps tools and `kubectl
// --show-managed-fields` read them), and a full-object update can still remove fields — the
// reason writes are PUTs with a field manager rather than server-side apply of the whole object.
describe("KubernetesStore field manager", () => {
  const cluster = testCluster();
  const manager = `weft-test-${process.pid}`;
  const store = new KubernetesStore(cluster.kc, { fieldManager: manager });
  const name = `fm-${process.pid}`;
  after(() => store.delete("BGPPeer", name).catch(() => undefined));

  const managers = async () => {
    const obj = JSON.parse(
      await cluster.kubectl(["get", "bgppeer", name, "-o", "json", "--show-managed-fields"]),
    ) as {
      metadata: { managedFields?: Array<{ manager: string; operation: string; subresource?: string }> };
    };
    return obj.metadata.managedFields ?? [];
  };

  it("records the component as manager of spec and status writes", async () => {
    const peer: BGPPeer = {
      apiVersion: "weft.dev/v1alpha1",
      kind: "BGPPeer",
      metadata: { name, labels: { a: "1", b: "2" } },
      spec: { peerIP: "127.0.0.9", asNumber: 64999, node: `no-such-node-${process.pid}` },
    };
    const created = await store.create("BGPPeer", peer);
    await store.updateStatus("BGPPeer", { ...created, status: { observedGeneration: 1, selectedNodes: [] } });
    const mf = await managers();
    assert.ok(
      mf.some((m) => m.manager === manager && !m.subresource),
      JSON.stringify(mf),
    );
    assert.ok(
      mf.some((m) => m.manager === manager && m.subresource === "status"),
      JSON.stringify(mf),
    );
    assert.ok(
      mf.every((m) => m.manager === manager),
      `only our manager wrote: ${JSON.stringify(mf)}`,
    );
  });

  it("an update without a label removes it", async () => {
    const cur = (await store.get("BGPPeer", name))!;
    const updated = await store.update("BGPPeer", {
      ...cur,
      metadata: { ...cur.metadata, labels: { a: "1" } },
    });
    assert.deepEqual(updated.metadata.labels, { a: "1" });
    assert.deepEqual((await store.get("BGPPeer", name))?.metadata.labels, { a: "1" });
  });
});
