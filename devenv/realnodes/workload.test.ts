import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { connectScript, parseConnectOutput, workloadManifest } from "./workload.js";

describe("real-node workload", () => {
  it("reads back which targets a pod reached from the check script's output", () => {
    const script = connectScript(["10.244.0.5:8080", "10.244.1.7:8080"]);
    assert.match(script, /agnhost connect --timeout=3s 10\.244\.0\.5:8080/);
    const parsed = parseConnectOutput("10.244.0.5:8080 ok\n10.244.1.7:8080 fail\n\n");
    assert.deepEqual(
      [...parsed],
      [
        ["10.244.0.5:8080", true],
        ["10.244.1.7:8080", false],
      ],
    );
  });

  it("spreads the agnhost replicas over nodes and never pulls", () => {
    const [deploy, svc] = parseAllDocuments(workloadManifest(6)).map((d) => d.toJS());
    assert.equal(deploy.spec.replicas, 6);
    assert.equal(
      deploy.spec.template.spec.topologySpreadConstraints[0].topologyKey,
      "kubernetes.io/hostname",
    );
    assert.equal(deploy.spec.template.spec.containers[0].imagePullPolicy, "Never");
    assert.equal(svc.kind, "Service");
    assert.equal(svc.spec.ports[0].targetPort, 8080);
  });
});
