import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { API_VERSION } from "../../api/index.js";
import { KubernetesStore } from "../../datastore/kubernetes.js";
import { InvalidError } from "../../datastore/store.js";
import { testCluster } from "../harness/cluster.js";
import { runStoreConformance } from "./store-conformance.js";

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
});
