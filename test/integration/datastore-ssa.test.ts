import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import { API_VERSION, type IPPool } from "../../api/index.js";
import { KubernetesStore } from "../../datastore/kubernetes.js";
import { ConflictError, NotFoundError } from "../../datastore/store.js";
import { testCluster } from "../harness/cluster.js";

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  fieldsV1?: Record<string, unknown>;
}

/**
 * KubernetesStore writes by server-side apply under its own field manager (GitOps tools and
 * `kubectl --show-managed-fields` see who owns what) and still keeps the Store's compare-and-swap.
 * The pools are disabled and select no node, so the IPAM tests running alongside never use them.
 */
describe("KubernetesStore server-side apply", () => {
  const cluster = testCluster();
  const manager = "weft-test";
  const store = new KubernetesStore(cluster.kc, { fieldManager: manager });
  const prefix = `ssa-${process.pid}-${randomBytes(3).toString("hex")}`;
  let n = 0;
  const names: string[] = [];
  // A ULA /48 per pool, unique per process, so no two pools of this run overlap.
  const pool = (): IPPool => {
    const name = `${prefix}-${n}`;
    names.push(name);
    const hex = ((process.pid * 16 + n++) & 0xffff).toString(16);
    return {
      apiVersion: API_VERSION,
      kind: "IPPool",
      metadata: { name, labels: { "weft.dev/test": prefix } },
      spec: {
        cidr: `fd5a:${hex}::/48`,
        disabled: true,
        nodeSelector: { matchLabels: { "weft.dev/test-no-such-node": prefix } },
      },
    };
  };

  const managedFields = async (name: string): Promise<ManagedFieldsEntry[]> => {
    const out = await cluster.kubectl(["get", "ippool", name, "-o", "json", "--show-managed-fields"]);
    return (
      (JSON.parse(out) as { metadata: { managedFields?: ManagedFieldsEntry[] } }).metadata.managedFields ?? []
    );
  };

  after(async () => {
    await Promise.all(names.map((name) => store.delete("IPPool", name)));
  });

  it("records updates and status updates as Apply by the store's field manager", async () => {
    const created = await store.create("IPPool", pool());
    const name = created.metadata.name;
    const afterCreate = await managedFields(name);
    assert.ok(
      afterCreate.some((e) => e.manager === manager),
      `create is recorded under ${manager}: ${JSON.stringify(afterCreate)}`,
    );

    const updated = await store.update("IPPool", {
      ...created,
      spec: { ...created.spec, natOutgoing: true },
    });
    assert.equal(updated.spec.natOutgoing, true);
    await store.updateStatus("IPPool", {
      ...updated,
      status: { observedGeneration: updated.metadata.generation, blocks: { used: 0, total: "0" } },
    });

    const entries = await managedFields(name);
    const main = entries.find((e) => e.manager === manager && e.operation === "Apply" && !e.subresource);
    assert.ok(main, `an Apply entry of ${manager} for the object: ${JSON.stringify(entries)}`);
    assert.ok(
      JSON.stringify(main.fieldsV1).includes('"f:natOutgoing"'),
      `${manager} owns spec.natOutgoing: ${JSON.stringify(main.fieldsV1)}`,
    );
    const status = entries.find(
      (e) => e.manager === manager && e.operation === "Apply" && e.subresource === "status",
    );
    assert.ok(status, `an Apply entry of ${manager} for the status subresource: ${JSON.stringify(entries)}`);
    assert.ok(JSON.stringify(status.fieldsV1).includes('"f:blocks"'), JSON.stringify(status.fieldsV1));

    // The text view users look at names the manager too.
    const yaml = await cluster.kubectl(["get", "ippool", name, "-o", "yaml", "--show-managed-fields"]);
    assert.match(yaml, new RegExp(`manager: ${manager}`));
    assert.match(yaml, /operation: Apply/);
  });

  it("refuses a write carrying a stale resourceVersion with ConflictError (update and updateStatus)", async () => {
    const v1 = await store.create("IPPool", pool());
    const name = v1.metadata.name;
    const v2 = await store.update("IPPool", { ...v1, spec: { ...v1.spec, natOutgoing: true } });
    assert.notEqual(v2.metadata.resourceVersion, v1.metadata.resourceVersion);

    await assert.rejects(
      store.update("IPPool", { ...v1, spec: { ...v1.spec, natOutgoing: false } }),
      (err: unknown) => {
        assert.ok(err instanceof ConflictError, String(err));
        assert.equal(err.objectName, name);
        return true;
      },
    );
    await assert.rejects(
      store.updateStatus("IPPool", { ...v1, status: { blocks: { used: 1, total: "1" } } }),
      ConflictError,
    );
    const got = await store.get("IPPool", name);
    assert.equal(got?.spec.natOutgoing, true, "the stale update changed nothing");
    assert.equal(got?.status?.blocks, undefined, "the stale status update changed nothing");
    assert.equal(got?.metadata.resourceVersion, v2.metadata.resourceVersion);
  });

  it("applying the same object again writes nothing (resourceVersion unchanged)", async () => {
    const v1 = await store.create("IPPool", pool());
    const v2 = await store.update("IPPool", { ...v1, spec: { ...v1.spec, natOutgoing: true } });
    const v3 = await store.update("IPPool", v2);
    assert.equal(v3.metadata.resourceVersion, v2.metadata.resourceVersion, "a no-op apply is not a write");

    const s1 = await store.updateStatus("IPPool", { ...v3, status: { blocks: { used: 0, total: "4" } } });
    const s2 = await store.updateStatus("IPPool", s1);
    assert.equal(
      s2.metadata.resourceVersion,
      s1.metadata.resourceVersion,
      "a no-op status apply is not a write",
    );
    assert.equal(
      (await store.get("IPPool", v1.metadata.name))?.metadata.resourceVersion,
      s1.metadata.resourceVersion,
    );
  });

  it("takes over fields another manager set, and removes a field it dropped", async () => {
    // Created by kubectl (another manager); the store's update must still win and replace.
    const obj = pool();
    obj.spec.natOutgoing = true;
    await cluster.kubectl(["create", "-f", "-"], JSON.stringify(obj));
    const v1 = await store.get("IPPool", obj.metadata.name);
    assert.ok(v1);
    const v2 = await store.update("IPPool", { ...v1, spec: { ...v1.spec, natOutgoing: false } });
    assert.equal(v2.spec.natOutgoing, false);
    const { natOutgoing: _drop, ...spec } = v2.spec;
    const v3 = await store.update("IPPool", { ...v2, spec });
    assert.equal(v3.spec.natOutgoing, undefined, "a field the store dropped is gone");
  });

  it("does not re-create an object deleted since it was read", async () => {
    const v1 = await store.create("IPPool", pool());
    const name = v1.metadata.name;
    assert.equal(await store.delete("IPPool", name), true);
    await assert.rejects(
      store.update("IPPool", { ...v1, spec: { ...v1.spec, natOutgoing: true } }),
      (err: unknown) => err instanceof ConflictError || err instanceof NotFoundError,
    );
    await assert.rejects(
      store.updateStatus("IPPool", { ...v1, status: { blocks: { used: 0, total: "0" } } }),
      (err: unknown) => err instanceof ConflictError || err instanceof NotFoundError,
    );
    assert.equal(await store.get("IPPool", name), undefined);
  });
});
