import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { testCluster } from "../../devenv/cluster.js";

describe("test control plane", () => {
  const cluster = testCluster();

  it("is kube-apiserver v1.32 built by the harness", async () => {
    const out = JSON.parse(await cluster.kubectl(["version", "-o", "json"]));
    assert.match(out.serverVersion.gitVersion, /^v1\.32\.\d+$/);
  });

  it("serves ValidatingAdmissionPolicy and RBAC", async () => {
    const out = await cluster.kubectl(["api-resources", "-o", "name"]);
    assert.ok(out.split("\n").includes("validatingadmissionpolicies.admissionregistration.k8s.io"), out);
    assert.ok(out.split("\n").includes("clusterroles.rbac.authorization.k8s.io"), out);
  });

  it("denies an identity without RBAC rights", async () => {
    const out = await cluster
      .kubectl(["auth", "can-i", "list", "nodes", "--as=someone"])
      .catch((e: { stdout?: string }) => e.stdout ?? "");
    assert.equal(out.trim(), "no");
  });

  it("is reachable through @kubernetes/client-node", async () => {
    const core = cluster.kc.makeApiClient(k8s.CoreV1Api);
    const ns = await core.listNamespace();
    assert.ok(ns.items.some((n) => n.metadata?.name === "kube-system"));
  });
});
