import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mergeFlags } from "../controlplane.js";
import {
  bootstrapManifests,
  containerdConfig,
  corefile,
  egressSelectorConfig,
  KUBELET_SYSCTLS,
  kubeletConfig,
  kubeProxyArgs,
  NODE_PRIVATE_PATHS,
  nodePaths,
} from "./config.js";

const paths = nodePaths("/tmp/c/nodes/n1");

describe("real-node configuration", () => {
  it("gives a node private directories over the standard host paths and sysctl files kubelet accepts", () => {
    const targets = paths.binds.map((b) => b.target);
    for (const p of NODE_PRIVATE_PATHS) assert.ok(targets.includes(p), `${p} is private to the node`);
    assert.ok(targets.includes("/etc/resolv.conf"));
    for (const b of paths.binds)
      assert.ok(b.source.startsWith("/tmp/c/nodes/n1/"), `${b.source} is inside the node`);
    assert.deepEqual(
      Object.fromEntries(paths.sysctlFiles.map((s) => [s.target.replace("/proc/sys/", ""), s.value])),
      KUBELET_SYSCTLS,
    );
  });

  it("writes a containerd config with one runc Root, the local sandbox image and the node's own dirs", () => {
    const toml = containerdConfig(paths, "registry.k8s.io/pause:3.10");
    assert.equal(toml.match(/^\s*Root = /gm)?.length, 1);
    assert.match(toml, /sandbox_image = "registry\.k8s\.io\/pause:3\.10"/);
    assert.match(toml, /restrict_oom_score_adj = true/);
    assert.match(toml, /root = "\/tmp\/c\/nodes\/n1\/containerd\/root"/);
    assert.match(toml, /address = "\/tmp\/c\/nodes\/n1\/containerd.sock"/);
  });

  it("configures kubelet for a shared machine: cgroupfs under its own root, nothing enforced or evicted", () => {
    const yaml = kubeletConfig(paths, {
      nodeName: "n1",
      nodeIP: "192.0.2.11",
      cgroupRoot: "/x-n1",
      clientCAFile: "/ca.crt",
    });
    for (const line of [
      "cgroupDriver: cgroupfs",
      "cgroupRoot: /x-n1",
      "enforceNodeAllocatable: []",
      "failSwapOn: false",
      "localStorageCapacityIsolation: false",
      "imageGCHighThresholdPercent: 100",
      "address: 192.0.2.11",
    ])
      assert.ok(yaml.includes(line), line);
  });

  it("keeps kube-proxy away from the machine's global conntrack sysctls and OOM scores", () => {
    const args = kubeProxyArgs(paths, "n1", "192.0.2.11");
    for (const a of [
      "--oom-score-adj=0",
      "--conntrack-max-per-core=0",
      "--conntrack-tcp-timeout-established=0",
    ])
      assert.ok(args.includes(a), a);
  });

  it("never lets CoreDNS forward to the machine's resolver", () => {
    const text = corefile("192.0.2.1", "/k");
    assert.doesNotMatch(text, /forward/);
    assert.match(text, /kubernetes cluster\.local/);
    assert.match(text, /bind 192\.0\.2\.1/);
  });

  it("sends the apiserver's cluster traffic through the unix-socket CONNECT proxy", () => {
    const text = egressSelectorConfig("/run/e.sock");
    assert.match(text, /name: cluster/);
    assert.match(text, /proxyProtocol: HTTPConnect/);
    assert.match(text, /udsName: \/run\/e\.sock/);
  });

  it("publishes CoreDNS on the hub as kube-dns", () => {
    const text = bootstrapManifests("192.0.2.1");
    assert.match(text, /clusterIP: 10\.96\.0\.10/);
    assert.match(text, /addresses: \["192\.0\.2\.1"\]/);
    assert.match(text, /name: "system:node-proxier"/);
  });

  it("merges apiserver flags by name: an override replaces its default, '-' removes it", () => {
    assert.deepEqual(mergeFlags(["--a=1", "--b=2", "--c=3"], ["--b=9", "--c=-", "--d=4"]), [
      "--a=1",
      "--b=9",
      "--d=4",
    ]);
    assert.deepEqual(mergeFlags(["--a=1"], []), ["--a=1"]);
  });
});
