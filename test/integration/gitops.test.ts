/**
 * What a GitOps tool (Flux, Argo CD with server-side apply) sees when weft-controller runs: the
 * tool owns the spec it applied, the controller owns only its statuses and finalizer (server-side
 * apply under its own field managers), so re-applying the manifests never conflicts and changes
 * nothing; every status has a Ready condition and observedGeneration that follow the spec.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Started, stopPid, waitFor } from "../../devenv/procs.js";
import { deleteNode, removePools, setup, spawnController } from "./ipam-support.js";

const { cluster, store, core } = setup();
const tag = `gitops${process.pid}`;
const label = { "weft.dev/test": tag };
const pool = `${tag}-pool`;
const peer = `${tag}-peer`;
const node = `${tag}-node`;
const GITOPS = "flux-test";
const dir = mkdtempSync(join(tmpdir(), `${tag}-`));

interface ManagedField {
  manager: string;
  operation: string;
  subresource?: string;
  fieldsV1?: Record<string, unknown>;
}
interface Obj {
  metadata: {
    name: string;
    generation?: number;
    resourceVersion?: string;
    labels?: Record<string, string>;
    finalizers?: string[];
    managedFields?: ManagedField[];
  };
  spec: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    conditions?: Array<{ type: string; status: string; reason: string; observedGeneration?: number }>;
  };
}

function manifests(natOutgoing: boolean) {
  return {
    apiVersion: "v1",
    kind: "List",
    items: [
      {
        apiVersion: "weft.dev/v1alpha1",
        kind: "IPPool",
        metadata: { name: pool, labels: label },
        spec: { cidr: "10.208.0.0/16", encapsulation: "HostGW", natOutgoing },
      },
      {
        apiVersion: "weft.dev/v1alpha1",
        kind: "BGPPeer",
        metadata: { name: peer, labels: label },
        spec: { peerIP: "192.0.2.77", asNumber: 64513, node },
      },
    ],
  };
}

const gitopsApply = (natOutgoing: boolean) =>
  cluster.kubectl(
    ["apply", "--server-side", `--field-manager=${GITOPS}`, "-f", "-"],
    JSON.stringify(manifests(natOutgoing)),
  );

async function get(kind: string, name: string): Promise<Obj> {
  return JSON.parse(await cluster.kubectl(["get", kind, name, "-o", "json", "--show-managed-fields"])) as Obj;
}

async function blockOfNode(): Promise<string | undefined> {
  const { items } = await store.list("IPAMBlock");
  return items.find((b) => b.spec.pool === pool && b.spec.affinity === node)?.metadata.name;
}

/** Ready condition present and both observedGenerations equal the object's generation. */
function current(o: Obj): boolean {
  const ready = o.status?.conditions?.find((c) => c.type === "Ready");
  return (
    ready !== undefined &&
    o.status?.observedGeneration === o.metadata.generation &&
    ready.observedGeneration === o.metadata.generation
  );
}

const managers = (o: Obj) =>
  (o.metadata.managedFields ?? []).map(
    (m) => `${m.manager}/${m.operation}${m.subresource ? `/${m.subresource}` : ""}`,
  );

let ctl: Started | undefined;

describe("GitOps: server-side apply, field managers and status conditions", () => {
  before(async () => {
    await core.createNode({
      body: {
        metadata: { name: node, labels: label, annotations: { "weft.dev/underlay-ip": "192.0.2.50" } },
      },
    });
    await gitopsApply(false);
    ctl = spawnController(cluster.kubeconfig, tag, join(dir, "controller.log"), ["--leader-elect=false"]);
  });

  after(async () => {
    if (ctl) await stopPid(ctl.pid, 3000);
    await deleteNode(core, node);
    await store.delete("RouteIntent", node).catch(() => false);
    await store.delete("BGPPeer", peer).catch(() => false);
    await removePools(store, [pool]);
    rmSync(dir, { recursive: true, force: true });
  });

  const controllerLog = () => (ctl ? readFileSync(ctl.logFile, "utf8").slice(-6000) : "");

  it("every status the controller writes has a Ready condition at the current generation", async () => {
    // what `kubectl wait --for=condition=Ready` and kstatus-based health checks rely on; kubectl
    // wait fails at once on an object that does not exist yet, and an intent is written only once
    // the node has its block. The controller process starts in before(); beside the GC chaos
    // test on a 2-core machine its start and first writes have taken close to a minute.
    const t0 = Date.now();
    await waitFor(
      "the node's RouteIntent",
      async () => ((await store.get("RouteIntent", node)) ? true : undefined),
      120_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\ncontroller log:\n${controllerLog()}`);
    });
    console.log(`# the controller wrote the node's RouteIntent ${Date.now() - t0} ms into the test`);
    // kubectl wait reads through the apiserver's watch cache, which under load can lag an object
    // created moments ago by seconds (NotFound); ask again until it has caught up.
    const kubectlWaitReady = (ref: string) =>
      waitFor(
        `kubectl wait --for=condition=Ready ${ref}`,
        () =>
          cluster.kubectl(["wait", "--for=condition=Ready", "--timeout=10s", ref]).then(
            () => true,
            () => undefined,
          ),
        90_000,
        500,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\ncontroller log:\n${controllerLog()}`);
      });
    await kubectlWaitReady(`ippool/${pool}`);
    await kubectlWaitReady(`routeintent/${node}`);
    const block = await waitFor("the node's block", blockOfNode, 30_000);
    await kubectlWaitReady(`ipamblock/${block}`);
    for (const [kind, name] of [
      ["ippool", pool],
      ["routeintent", node],
      ["ipamblock", block],
      ["bgppeer", peer],
    ] as const) {
      const o = await waitFor(
        `${kind} ${name} status at its generation`,
        async () => {
          const got = await get(kind, name);
          return current(got) ? got : undefined;
        },
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\ncontroller log:\n${controllerLog()}`);
      });
      assert.ok(
        o.status?.conditions?.every((c) => c.observedGeneration === o.metadata.generation),
        kind,
      );
    }
  });

  it("the GitOps tool keeps the spec; the controller owns only status and its finalizer", async () => {
    const p = await get("ippool", pool);
    assert.deepEqual(
      managers(p).sort(),
      [`${GITOPS}/Apply`, "weft-controller-finalizer/Apply", "weft-controller/Apply/status"],
      JSON.stringify(p.metadata.managedFields),
    );
    const owner = p.metadata.managedFields?.find((m) => m.manager === "weft-controller-finalizer");
    assert.deepEqual(
      Object.keys(owner?.fieldsV1 ?? {}),
      ["f:metadata"],
      "the finalizer manager owns metadata only",
    );
    assert.deepEqual(p.metadata.finalizers, ["weft.dev/pool-drain"]);
    const bp = await get("bgppeer", peer);
    assert.deepEqual(managers(bp).sort(), [`${GITOPS}/Apply`, "weft-controller/Apply/status"]);
  });

  it("objects Weft derives are applied whole by their one component", async () => {
    const intent = await get("routeintent", node);
    assert.deepEqual(managers(intent).sort(), ["weft-controller/Apply", "weft-controller/Apply/status"]);
    const name = await waitFor("the node's block", blockOfNode, 30_000);
    const block = await waitFor(
      "the block's status",
      async () => {
        const o = await get("ipamblock", name);
        return current(o) ? o : undefined;
      },
      30_000,
    );
    // a block is the unit of compare-and-swap (create = claim, PUT with resourceVersion), its
    // status is applied
    assert.ok(managers(block).includes("weft-controller/Apply/status"), managers(block).join(" "));
    assert.ok(
      managers(block).every((m) => m.startsWith("weft-controller/")),
      managers(block).join(" "),
    );
  });

  it("re-applying the same manifests neither conflicts nor changes anything", async () => {
    const before = [await get("ippool", pool), await get("bgppeer", peer)];
    // without --force-conflicts: a field the controller had taken would fail this apply
    await gitopsApply(false);
    const diff = await cluster
      .kubectl(
        ["diff", "--server-side", `--field-manager=${GITOPS}`, "-f", "-"],
        JSON.stringify(manifests(false)),
      )
      .then(
        () => "",
        (err: { stdout?: string; message: string }) => err.stdout ?? err.message,
      );
    assert.equal(diff, "", "kubectl diff shows no change");
    const afterApply = [await get("ippool", pool), await get("bgppeer", peer)];
    assert.deepEqual(
      afterApply.map((o) => o.metadata.resourceVersion),
      before.map((o) => o.metadata.resourceVersion),
      "nothing was written",
    );
  });

  it("a spec change by the GitOps tool is observed: observedGeneration follows", async () => {
    const g1 = (await get("ippool", pool)).metadata.generation ?? 0;
    await gitopsApply(true);
    const p = await waitFor(
      "pool status at the new generation",
      async () => {
        const o = await get("ippool", pool);
        return o.metadata.generation === g1 + 1 && current(o) ? o : undefined;
      },
      30_000,
    );
    assert.equal(p.spec.natOutgoing, true);
    assert.deepEqual(managers(p).sort(), [
      `${GITOPS}/Apply`,
      "weft-controller-finalizer/Apply",
      "weft-controller/Apply/status",
    ]);
  });

  it("a label removed from the node is removed from its RouteIntent", async () => {
    const patch = (labels: Record<string, string | null>) =>
      cluster.kubectl([
        "patch",
        "node",
        node,
        "--type=merge",
        "-p",
        JSON.stringify({ metadata: { labels } }),
      ]);
    await patch({ "example.com/rack": "r1" });
    await waitFor(
      "label on the intent",
      async () =>
        (await get("routeintent", node)).metadata.labels?.["example.com/rack"] === "r1" ? true : undefined,
      30_000,
    );
    await patch({ "example.com/rack": null });
    const intent = await waitFor(
      "label gone from the intent",
      async () => {
        const o = await get("routeintent", node);
        return o.metadata.labels && !("example.com/rack" in o.metadata.labels) ? o : undefined;
      },
      30_000,
    );
    assert.deepEqual(intent.metadata.labels, label);
  });

  it("deleting the pool: the controller drains it and gives its finalizer up", async () => {
    await cluster.kubectl(["delete", "ippool", pool, "--wait=false"]);
    await waitFor(
      "pool gone",
      async () => ((await store.get("IPPool", pool)) === undefined ? true : undefined),
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\ncontroller log:\n${controllerLog()}`);
    });
    assert.equal(await blockOfNode(), undefined, "its blocks went with it");
  });
});
