import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nodeStatus } from "../../agent/status.js";
import { API_VERSION, type NodeNetworkStatusStatus } from "../../api/index.js";
import { KubernetesStore } from "../../datastore/kubernetes.js";
import { InvalidError } from "../../datastore/store.js";
import { testCluster } from "../../devenv/cluster.js";
import { runStoreConformance } from "./store-conformance-support.js";

runStoreConformance("kubernetes", () => new KubernetesStore(testCluster().kc, { pageSize: 2 }));

describe("KubernetesStore", () => {
  it("turns a refusal by the apiserver into InvalidError naming the field", async () => {
    const store = new KubernetesStore(testCluster().kc);
    const name = `invalid-${process.pid}`;
    await assert.rejects(
      store.create("BGPPeer", {
        apiVersion: API_VERSION,
        kind: "BGPPeer",
        metadata: { name },
        spec: { peerIP: "not-an-address", asNumber: 64512, node: "nowhere" },
      }),
      (err: unknown) => {
        assert.ok(err instanceof InvalidError, String(err));
        assert.match(err.message, /spec\.peerIP/);
        return true;
      },
    );
    assert.equal(await store.get("BGPPeer", name), undefined);
  });

  it("takes an agent's status whose applied intents went from some to none", async () => {
    // Server-side apply turns a map its owner empties into null, which the schema refuses: the
    // agent of the last node left in a cluster network could never write its status again.
    const store = new KubernetesStore(testCluster().kc, { fieldManager: "weft-agent" });
    const node = `status-${process.pid}`;
    const status = (appliedIntents: Record<string, number>, previous?: NodeNetworkStatusStatus) =>
      nodeStatus({
        previous,
        generation: 1,
        dataplane: {
          owned: { routes: 0, neighbors: 0, fdb: 0 },
          desired: { routes: 0, neighbors: 0, fdb: 0 },
          conflicts: [],
          failed: [],
          counters: { resyncs: 0, repairs: 0, applies: 1, requests: 1, eventOverflows: 0 },
          converged: true,
        },
        appliedIntents,
        problems: [],
        vxlanWanted: false,
        kernel: { ipip: false },
        ipipWanted: false,
      });
    try {
      await store.apply("NodeNetworkStatus", {
        apiVersion: API_VERSION,
        kind: "NodeNetworkStatus",
        metadata: { name: node },
        spec: { node },
      });
      const some = await store.applyStatus("NodeNetworkStatus", node, status({ "node-b": 3 }));
      assert.deepEqual(some.status?.appliedIntents, { "node-b": 3 });
      const none = await store.applyStatus("NodeNetworkStatus", node, status({}, some.status));
      assert.equal(none.status?.appliedIntents, undefined);
      assert.equal(none.status?.conditions?.find((c) => c.type === "Ready")?.status, "True");
    } finally {
      await store.delete("NodeNetworkStatus", node).catch(() => false);
    }
  });
});
