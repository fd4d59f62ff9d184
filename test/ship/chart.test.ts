import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { chartDir, helm, helmTemplate, type K8sObject, parseManifest } from "./chart-support.js";

function find(objs: K8sObject[], kind: string, nameEnd = ""): K8sObject {
  const o = objs.find((x) => x.kind === kind && x.metadata.name.endsWith(nameEnd));
  assert.ok(o, `no ${kind} ${nameEnd} in the rendered chart`);
  return o;
}

// biome-ignore lint/suspicious/noExplicitAny: walking rendered YAML
type Any = any;

describe("chart", () => {
  test("templates use nothing that changes between renders (random values, dates, lookups)", () => {
    const dir = join(chartDir, "templates");
    for (const f of readdirSync(dir)) {
      // template actions only; comments are left out
      const text = [...readFileSync(join(dir, f), "utf8").matchAll(/\{\{(?!-?\s*\/\*)[\s\S]*?\}\}/g)]
        .map((m) => m[0])
        .join("\n");
      assert.ok(f === "NOTES.txt" || text.length > 0, `${f} has template actions`);
      assert.doesNotMatch(
        text,
        /\b(rand\w*|uuidv4|now|date\w*|genCA|genSelfSignedCert\w*|genPrivateKey|lookup)\b/,
        f,
      );
    }
  });

  test("rendering twice gives the same bytes, in every mode", async () => {
    for (const mode of ["vxlan", "host-gw", "bgp"]) {
      const values = { mode, "bgp.routeReflectors.nodeSelector.matchLabels.rr": "true" };
      const a = await helmTemplate("weft", "kube-system", values);
      const b = await helmTemplate("weft", "kube-system", values);
      assert.equal(a, b, `mode ${mode}`);
    }
  });

  test("the workloads have what a network plugin needs", async () => {
    const objs = parseManifest(await helmTemplate("weft", "kube-system"));
    const dep: Any = find(objs, "Deployment", "-controller");
    assert.equal(dep.metadata.name, "weft-controller");
    assert.equal(dep.spec.replicas, 2);
    const c = dep.spec.template.spec.containers[0];
    assert.ok(c.args.includes("--leader-elect=true"));
    assert.equal(c.livenessProbe.httpGet.path, "/healthz");
    assert.equal(c.readinessProbe.httpGet.path, "/readyz");
    assert.equal(c.ports[0].containerPort, 9871);
    assert.ok(c.resources.requests.cpu && c.resources.limits.memory);
    assert.equal(dep.spec.template.spec.securityContext.runAsNonRoot, true);
    assert.equal((find(objs, "PodDisruptionBudget") as Any).spec.minAvailable, 1);

    const ds: Any = find(objs, "DaemonSet", "-agent");
    const pod = ds.spec.template.spec;
    assert.equal(pod.hostNetwork, true);
    assert.deepEqual(pod.tolerations, [{ operator: "Exists" }], "tolerates every taint");
    const agent = pod.containers[0];
    assert.notEqual(agent.securityContext.privileged, true);
    for (const cap of ["NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"])
      assert.ok(agent.securityContext.capabilities.add.includes(cap), cap);
    assert.ok(agent.args.includes("--node=$(NODE_NAME)"));
    const nodeName = agent.env.find((e: Any) => e.name === "NODE_NAME");
    assert.equal(nodeName.valueFrom.fieldRef.fieldPath, "spec.nodeName");
    const hostPaths = pod.volumes.filter((v: Any) => v.hostPath).map((v: Any) => v.hostPath.path);
    for (const p of ["/var/run/weft", "/opt/cni/bin", "/etc/cni/net.d"]) assert.ok(hostPaths.includes(p), p);
    assert.equal(pod.initContainers[0].name, "install-cni");

    const cm: Any = find(objs, "ConfigMap", "-agent-cni");
    const conflist = JSON.parse(cm.data["10-weft.conflist"]);
    assert.equal(conflist.plugins[0].type, "weft");
    assert.equal(conflist.plugins[0].agentSocket, "/var/run/weft/agent.sock");
  });

  test("the default pool and BGP objects follow mode, CIDR and reflector selector", async () => {
    const vx = parseManifest(await helmTemplate("weft", "kube-system"));
    const pool: Any = find(vx, "IPPool", "default");
    assert.equal(pool.spec.cidr, "10.244.0.0/16");
    assert.equal(pool.spec.encapsulation, "VXLAN");
    assert.ok(!vx.some((o) => o.kind === "BGPConfiguration"), "no BGP objects outside bgp mode");

    const hg = parseManifest(
      await helmTemplate("weft", "kube-system", { mode: "host-gw", "defaultPool.cidr": "10.50.0.0/16" }),
    );
    assert.equal((find(hg, "IPPool") as Any).spec.encapsulation, "HostGW");
    assert.equal((find(hg, "IPPool") as Any).spec.cidr, "10.50.0.0/16");
    assert.equal((find(hg, "IPPool") as Any).spec.vxlan, undefined);

    const bgp = parseManifest(
      await helmTemplate("weft", "kube-system", {
        mode: "bgp",
        "bgp.asNumber": 65010,
        "bgp.routeReflectors.nodeSelector.matchLabels.rr": "true",
      }),
    );
    assert.equal((find(bgp, "IPPool") as Any).spec.encapsulation, "BGP");
    const cfg: Any = find(bgp, "BGPConfiguration");
    assert.equal(cfg.metadata.name, "default");
    assert.equal(cfg.spec.asNumber, 65010);
    const peer: Any = find(bgp, "BGPPeer", "-route-reflectors");
    assert.deepEqual(peer.spec.peerSelector, { matchLabels: { rr: "true" } });
  });

  test("a mistyped or ill-typed value is refused by values.schema.json", async () => {
    const cases: Array<[Record<string, string | number | boolean>, RegExp]> = [
      [{ "defaultPool.cidrr": "10.1.0.0/16" }, /cidrr/],
      [{ mode: "ipip" }, /mode/],
      [{ "controller.replicas": "two" }, /replicas/],
      [{ "defaultPool.cidr": "10.1.0.0" }, /cidr/],
      [{ "defaultPool.blockSize": 40 }, /blockSize/],
      [{ "agent.healthPort": 70000 }, /healthPort/],
      [{ "image.digest": "latest" }, /digest/],
    ];
    for (const [values, want] of cases) {
      const r = await helm([
        "template",
        "weft",
        chartDir,
        ...Object.entries(values).flatMap(([k, v]) => [
          typeof v === "string" ? "--set-string" : "--set",
          `${k}=${v}`,
        ]),
      ]);
      assert.notEqual(r.code, 0, `accepted ${JSON.stringify(values)}`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/, r.stderr);
      assert.match(r.stderr, want, r.stderr);
    }
  });
});
