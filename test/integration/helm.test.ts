/**
 * The chart against the real apiserver: lint, server-side dry run of the rendered output,
 * install, apply twice, upgrade, uninstall, and the schema refusing bad values. There is no
 * controller-manager or kubelet here, so pods never run: the tests assert objects, not pods.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { testCluster } from "../../devenv/cluster.js";
import { repoRoot } from "../../devenv/tools.js";
import { chartDir, helm, helmTemplate, type K8sObject, parseManifest } from "../ship/chart-support.js";
import { HelmCluster, isolatedPool, uniqueRelease } from "./helm-support.js";

// biome-ignore lint/suspicious/noExplicitAny: reading objects back from kubectl
type Any = any;

const cluster = testCluster();
const hc = new HelmCluster(cluster);
const cleanups: Array<() => Promise<unknown>> = [];

/** kind/name (and -n namespace) for kubectl, for an object of a manifest. */
function ref(o: K8sObject): string[] {
  const args = [
    `${o.kind}.${o.apiVersion.includes("/") ? o.apiVersion.split("/")[0] : ""}`.replace(/\.$/, ""),
    o.metadata.name,
  ];
  return o.metadata.namespace ? [...args, "-n", o.metadata.namespace] : args;
}

async function getJSON(args: string[]): Promise<Any> {
  return JSON.parse(await cluster.kubectl(["get", ...args, "-o", "json"]));
}

async function exists(args: string[]): Promise<boolean> {
  const out = await cluster.kubectl(["get", ...args, "--ignore-not-found", "-o", "name"]);
  return out.trim() !== "";
}

describe("helm chart on the real apiserver", () => {
  before(() => {
    cleanups.push(async () => hc.cleanup());
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  test("helm lint --strict is clean", async () => {
    // no --kube-version: the helm install-tools builds knows its Kubernetes version (link flags)
    const r = await helm(["lint", "--strict", chartDir]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    assert.doesNotMatch(r.stdout, /\[(WARNING|ERROR)\]/, r.stdout);
  });

  test("helm template output is accepted by kubectl apply --dry-run=server, in every mode", async () => {
    const { release, namespace } = uniqueRelease("dry");
    await cluster.kubectl(["create", "namespace", namespace]);
    for (const mode of ["vxlan", "host-gw", "bgp"]) {
      const text = await helmTemplate(release, namespace, {
        ...isolatedPool(release),
        mode,
        "bgp.routeReflectors.nodeSelector.matchLabels.rr": "true",
      });
      const out = await cluster.kubectl(["apply", "--dry-run=server", "-f", "-"], text);
      const objs = parseManifest(text);
      assert.equal(out.trim().split("\n").length, objs.length, out);
      assert.match(out, /validatingadmissionpolicy.*created \(server dry run\)/);
      if (mode === "bgp")
        assert.match(out, /bgpconfiguration\.weft\.dev\/default created \(server dry run\)/);
    }
  });

  test("deploy/weft.yaml (for kubectl apply users) is accepted by the apiserver", async () => {
    const text = readFileSync(join(repoRoot, "deploy", "weft.yaml"), "utf8");
    const out = await cluster.kubectl(["apply", "--dry-run=server", "-f", "-"], text);
    assert.equal(out.trim().split("\n").length, parseManifest(text).length, out);
    assert.match(out, /customresourcedefinition.apiextensions.k8s.io\/ippools.weft.dev/);
    assert.match(out, /daemonset.apps\/weft-agent (created|configured|unchanged) \(server dry run\)/);
  });

  test("helm install creates every object of the release; upgrade changes them; uninstall removes them but keeps the CRDs", async () => {
    const { release, namespace } = uniqueRelease("ins");
    cleanups.push(() => hc.uninstall(release, namespace));
    const values = { ...isolatedPool(release) };
    const notes = await hc.mustInstall(release, namespace, values);
    assert.match(
      notes,
      /kubectl wait --for=condition=Ready ippool\/pool-/,
      "NOTES.txt tells how to wait for the pool",
    );

    const manifest = (await hc.run(["get", "manifest", release, "-n", namespace])).stdout;
    const objs = parseManifest(manifest);
    const kinds = new Set(objs.map((o) => o.kind));
    for (const k of [
      "ServiceAccount",
      "ClusterRole",
      "ClusterRoleBinding",
      "Role",
      "RoleBinding",
      "ConfigMap",
      "Deployment",
      "DaemonSet",
      "PodDisruptionBudget",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicyBinding",
      "IPPool",
    ]) {
      assert.ok(kinds.has(k), `the release has a ${k}`);
    }
    for (const o of objs) assert.ok(await exists(ref(o)), `${o.kind} ${o.metadata.name} was created`);
    const dep = await getJSON(["deployment", `${release}-weft-controller`, "-n", namespace]);
    assert.equal(dep.spec.replicas, 2);
    const pool = await getJSON(["ippool", `pool-${release}`]);
    assert.equal(pool.spec.encapsulation, "VXLAN");
    assert.equal(pool.spec.vxlan.vni, 4096);

    // upgrade with changed values
    await hc.mustInstall(
      release,
      namespace,
      { ...values, mode: "host-gw", "controller.replicas": 3, "agent.healthPort": 9972, "cni.mtu": 1400 },
      "upgrade",
    );
    assert.equal(
      (await getJSON(["deployment", `${release}-weft-controller`, "-n", namespace])).spec.replicas,
      3,
    );
    const pool2 = await getJSON(["ippool", `pool-${release}`]);
    assert.equal(pool2.spec.encapsulation, "HostGW");
    assert.equal(pool2.spec.vxlan, undefined, "the vxlan settings left with the mode");
    const ds = await getJSON(["daemonset", `${release}-weft-agent`, "-n", namespace]);
    assert.equal(ds.spec.template.spec.containers[0].ports[0].containerPort, 9972);
    const cm = await getJSON(["configmap", `${release}-weft-agent-cni`, "-n", namespace]);
    assert.equal(JSON.parse(cm.data["10-weft.conflist"]).plugins[0].mtu, 1400);
    const history = (await hc.run(["history", release, "-n", namespace, "-o", "json"])).stdout;
    assert.equal((JSON.parse(history) as unknown[]).length, 2);

    // an upgrade the apiserver refuses (the pool CIDR is immutable) fails and names the field
    const bad = await hc.install(
      release,
      namespace,
      { ...values, "defaultPool.cidr": "10.201.0.0/16" },
      "upgrade",
    );
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /spec\.cidr is immutable/);

    const un = await hc.run(["uninstall", release, "-n", namespace]);
    assert.equal(un.code, 0, un.stderr);
    for (const o of objs)
      assert.equal(await exists(ref(o)), false, `${o.kind} ${o.metadata.name} was removed`);
    for (const crd of [
      "ippools",
      "ipamblocks",
      "routeintents",
      "nodenetworkstatuses",
      "bgpconfigurations",
      "bgppeers",
    ])
      assert.ok(await exists(["crd", `${crd}.weft.dev`]), `CRD ${crd}.weft.dev is kept`);
  });

  test("applying the rendered manifests twice changes nothing", async () => {
    const { release, namespace } = uniqueRelease("gitops");
    await cluster.kubectl(["create", "namespace", namespace]);
    const text = await helmTemplate(release, namespace, isolatedPool(release, "10.202.0.0/16"));
    cleanups.push(() => cluster.kubectl(["delete", "--ignore-not-found", "--wait=false", "-f", "-"], text));
    const first = await cluster.kubectl(["apply", "-f", "-"], text);
    assert.doesNotMatch(first, /unchanged/);
    const objs = parseManifest(text);
    const versions = () =>
      Promise.all(
        objs.map(
          async (o) => `${o.kind}/${o.metadata.name}@${(await getJSON(ref(o))).metadata.resourceVersion}`,
        ),
      );
    const v1 = await versions();
    const second = await cluster.kubectl(["apply", "-f", "-"], text);
    // kubectl always re-sends a PodDisruptionBudget's selector (patchStrategy replace); the
    // apiserver finds nothing to change, which the resourceVersions below prove
    for (const line of second.trim().split("\n"))
      if (!line.startsWith("poddisruptionbudget")) assert.match(line, / unchanged$/, second);
    assert.deepEqual(await versions(), v1, "a second client-side apply wrote nothing");
    // server-side apply, as Argo CD and Flux do it: the first records its field manager, the
    // second must write nothing
    const ssa = ["apply", "--server-side", "--field-manager=gitops-test", "--force-conflicts", "-f", "-"];
    await cluster.kubectl(ssa, text);
    const v3 = await versions();
    await cluster.kubectl(ssa, text);
    assert.deepEqual(await versions(), v3, "a second server-side apply wrote nothing");
  });

  test("a mistyped value is refused by the schema and nothing is installed", async () => {
    const { release, namespace } = uniqueRelease("typo");
    const r = await hc.install(release, namespace, { ...isolatedPool(release), "controller.replicaz": 2 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /values don't meet the specifications of the schema/);
    assert.match(r.stderr, /additional properties 'replicaz' not allowed/);
    const list = (await hc.run(["list", "-n", namespace, "-a", "-q"])).stdout;
    assert.equal(list.trim(), "", "no release was recorded");
  });
});
