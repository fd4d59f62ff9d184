import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { BGPPeerSpec } from "../api/bgp.js";
import { tryParseIP } from "../net/index.js";
import { computeTopology, gracefulRestartTurn, parseClusterID, type Topology } from "./topology.js";
import { nodes, peer } from "./topology-support.js";

/** Every session appears on both ends (node pairs) with exactly one active side. */
function assertSymmetric(t: Topology): void {
  for (const [name, nt] of Object.entries(t.nodes)) {
    for (const s of nt.sessions) {
      if (!s.peerNode) continue;
      const back = t.nodes[s.peerNode]?.sessions.find((o) => o.peerIP === s.localIP);
      assert.ok(back, `${s.peerNode} has no session back to ${name} (${s.localIP})`);
      assert.equal(back.peerNode, name);
      assert.notEqual(back.passive, s.passive, `exactly one side of ${name}<->${s.peerNode} is passive`);
    }
  }
}

function perNodeCount(t: Topology): number {
  return Object.values(t.nodes).reduce((n, nt) => n + nt.sessions.filter((s) => s.peerNode).length, 0);
}

describe("full mesh", () => {
  it("has N(N-1)/2 sessions, each pair once, for N = 1..12", () => {
    for (let n = 1; n <= 12; n++) {
      const t = computeTopology({ nodes: nodes(n) });
      assert.equal(t.sessions.length, (n * (n - 1)) / 2, `N=${n}`);
      assert.equal(perNodeCount(t), n * (n - 1));
      assert.ok(t.meshEnabled);
      assert.deepEqual(t.problems, []);
      for (const nt of Object.values(t.nodes)) assert.equal(nt.sessions.length, n - 1);
      const pairs = new Set(t.sessions.map((s) => [s.a, s.b].sort().join("|")));
      assert.equal(pairs.size, t.sessions.length, "no pair twice");
      assertSymmetric(t);
    }
  });

  it("makes the numerically higher address the passive side (10.0.0.10 > 10.0.0.9)", () => {
    const t = computeTopology({ nodes: nodes(10) });
    const s9 = t.nodes["node-09"]?.sessions.find((s) => s.peerNode === "node-10");
    const s10 = t.nodes["node-10"]?.sessions.find((s) => s.peerNode === "node-09");
    assert.equal(s9?.passive, false);
    assert.equal(s10?.passive, true);
    for (const nt of Object.values(t.nodes)) {
      for (const s of nt.sessions) {
        const local = tryParseIP(s.localIP)?.value as bigint;
        const remote = tryParseIP(s.peerIP)?.value as bigint;
        assert.equal(s.passive, local > remote);
      }
    }
  });

  it("peers once per address family on dual-stack nodes", () => {
    const t = computeTopology({ nodes: nodes(5, { v6: true }) });
    assert.equal(t.sessions.length, 2 * 10);
    assert.equal(t.sessions.filter((s) => s.family === 6).length, 10);
    const n1 = t.nodes["node-01"];
    assert.equal(n1?.sessions.length, 8);
    assert.equal(n1?.routerID, "10.0.0.1");
    assertSymmetric(t);
  });

  it("uses the configured AS, port, timers and mesh password", () => {
    const t = computeTopology({
      config: {
        asNumber: 4200000000,
        listenPort: 1179,
        holdSeconds: 9,
        meshPassword: { name: "bgp", namespace: "kube-system", key: "pw" },
      },
      nodes: nodes(3),
    });
    const n = t.nodes["node-02"];
    assert.equal(n?.localAS, 4200000000);
    assert.equal(n?.listenPort, 1179);
    assert.equal(n?.holdSeconds, 9);
    assert.equal(n?.keepaliveSeconds, 3);
    for (const s of n?.sessions ?? []) {
      assert.equal(s.port, 1179);
      assert.equal(s.peerAS, 4200000000);
      assert.deepEqual(s.password, { name: "bgp", namespace: "kube-system", key: "pw" });
    }
  });

  it("has no node sessions when the mesh is off and nothing else peers", () => {
    const t = computeTopology({ config: { nodeToNodeMesh: false }, nodes: nodes(5) });
    assert.equal(t.sessions.length, 0);
    assert.equal(t.meshEnabled, false);
  });

  it("derives a valid router id for an IPv6-only node", () => {
    const t = computeTopology({
      nodes: [
        { name: "v6a", underlayIPv6: "fd00::1" },
        { name: "v6b", underlayIPv6: "fd00::2" },
      ],
    });
    const a = t.nodes.v6a?.routerID as string;
    const b = t.nodes.v6b?.routerID as string;
    assert.equal(tryParseIP(a)?.family, 4);
    assert.notEqual(a, b);
    assert.equal(t.sessions.length, 1);
    assert.equal(t.sessions[0]?.family, 6);
  });

  it("reports nodes without usable addresses and keeps going", () => {
    const t = computeTopology({
      nodes: [
        ...nodes(3),
        { name: "broken", underlayIPv4: "10.0.0.300" },
        { name: "dup", underlayIPv4: "10.0.0.1" },
        { name: "zone", underlayIPv6: "fe80::1%eth0" },
      ],
    });
    assert.equal(t.sessions.length, 1, "only node-02 and node-03 are sound");
    const names = t.problems.map((p) => p.name).sort();
    assert.deepEqual(names, ["broken", "broken", "dup", "dup", "node-01", "node-01", "zone", "zone"]);
    assert.deepEqual(t.nodes.broken?.sessions, []);
  });
});

describe("route reflectors", () => {
  it("one reflector: N-1 sessions, mesh off, reflector marks clients", () => {
    const t = computeTopology({ nodes: nodes(6, { reflectors: { 3: "1.0.0.1" } }) });
    assert.equal(t.meshEnabled, false);
    assert.deepEqual(t.reflectors, ["node-03"]);
    assert.equal(t.sessions.length, 5);
    const rr = t.nodes["node-03"];
    assert.equal(rr?.routeReflectorClusterID, "1.0.0.1");
    assert.equal(rr?.sessions.length, 5);
    for (const s of rr?.sessions ?? []) {
      assert.equal(s.kind, "rr-to-client");
      assert.equal(s.rrClient, true);
      assert.equal(s.rrClusterID, "1.0.0.1");
    }
    for (const name of ["node-01", "node-02", "node-04", "node-05", "node-06"]) {
      const ss = t.nodes[name]?.sessions ?? [];
      assert.equal(ss.length, 1, `${name} peers only with the reflector`);
      assert.equal(ss[0]?.kind, "rr-client");
      assert.equal(ss[0]?.peerNode, "node-03");
      assert.equal(ss[0]?.rrClient, undefined);
    }
    assertSymmetric(t);
  });

  it("two reflectors: 2N-3 sessions for N = 3..50", () => {
    for (let n = 3; n <= 50; n++) {
      const t = computeTopology({ nodes: nodes(n, { reflectors: { 1: "1.0.0.1", 2: "1.0.0.1" } }) });
      assert.equal(t.sessions.length, 2 * n - 3, `N=${n}`);
      assert.equal(t.sessions.filter((s) => s.kind === "rr-peer").length, 1);
      assertSymmetric(t);
    }
  });

  it("session count is R(R-1)/2 + (N-R)R with reflectors and N(N-1)/2 without (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 25 }), fc.array(fc.boolean(), { maxLength: 25 }), (n, flags) => {
        const rr: Record<number, string> = {};
        for (let i = 1; i <= n; i++) if (flags[i - 1]) rr[i] = String(i);
        const r = Object.keys(rr).length;
        const t = computeTopology({ nodes: nodes(n, { reflectors: rr }) });
        const expected = r === 0 ? (n * (n - 1)) / 2 : (r * (r - 1)) / 2 + (n - r) * r;
        assert.equal(t.sessions.length, expected);
        assertSymmetric(t);
      }),
    );
  });

  it("several clusters: reflectors peer with each other, clients with every reflector", () => {
    const t = computeTopology({
      nodes: nodes(7, { reflectors: { 1: "1.0.0.1", 2: "1.0.0.1", 3: "2" } }),
    });
    assert.equal(t.nodes["node-03"]?.routeReflectorClusterID, "0.0.0.2");
    assert.equal(t.sessions.filter((s) => s.kind === "rr-peer").length, 3);
    assert.equal(t.sessions.filter((s) => s.kind === "rr-client").length, 4 * 3);
    for (const s of t.nodes["node-03"]?.sessions ?? []) {
      if (s.kind === "rr-to-client") assert.equal(s.rrClusterID, "0.0.0.2");
      else assert.equal(s.kind, "rr-peer");
    }
    for (const s of t.nodes["node-01"]?.sessions ?? []) {
      if (s.kind === "rr-to-client") assert.equal(s.rrClusterID, "1.0.0.1");
    }
  });

  it("meshWithReflectors keeps the mesh between clients", () => {
    const t = computeTopology({
      config: { meshWithReflectors: true },
      nodes: nodes(5, { reflectors: { 1: "1.0.0.1" } }),
    });
    assert.equal(t.meshEnabled, true);
    assert.equal(t.sessions.length, 10);
    assert.equal(t.sessions.filter((s) => s.kind === "rr-client").length, 4);
    assert.equal(t.sessions.filter((s) => s.kind === "mesh").length, 6);
  });

  it("a bad cluster id is a problem and the node stays a client", () => {
    const t = computeTopology({ nodes: nodes(4, { reflectors: { 1: "1.0.0.1", 2: 'x"; }' } }) });
    assert.deepEqual(t.reflectors, ["node-01"]);
    assert.equal(t.problems.length, 1);
    assert.equal(t.problems[0]?.name, "node-02");
    assert.match(t.problems[0]?.message ?? "", /cluster id/);
    assert.equal(t.sessions.length, 3);
  });

  it("parses cluster ids as dotted quads or 32-bit numbers only", () => {
    assert.equal(parseClusterID("1.2.3.4"), "1.2.3.4");
    assert.equal(parseClusterID("4294967295"), "255.255.255.255");
    assert.equal(parseClusterID("16909060"), "1.2.3.4");
    for (const bad of ["4294967296", "fd00::1", "1.2.3", "", "abc", "1.2.3.4; }"]) {
      assert.equal(parseClusterID(bad), undefined, bad);
    }
  });
});

describe("BGPPeers", () => {
  it("mixes external peers by node, by nodeSelector and for all nodes", () => {
    const t = computeTopology({
      nodes: nodes(4, { v6: true }),
      peers: [
        peer("tor-a", { peerIP: "192.0.2.1", asNumber: 65001, nodeSelector: { matchLabels: { rack: "a" } } }),
        peer("tor-b", {
          peerIP: "192.0.2.2",
          asNumber: 65002,
          nodeSelector: { matchExpressions: [{ key: "rack", operator: "In", values: ["b"] }] },
          port: 1790,
        }),
        peer("one", { peerIP: "2001:db8::1", asNumber: 65003, node: "node-04" }),
        peer("all", {
          peerIP: "192.0.2.9",
          asNumber: 64512,
          password: { name: "s", key: "k" },
        }),
      ],
    });
    assert.deepEqual(t.problems, []);
    const ext = t.sessions.filter((s) => s.external);
    assert.equal(ext.length, 2 + 2 + 1 + 4);
    assert.equal(t.sessions.length - ext.length, 2 * 6, "the mesh is untouched");
    assert.deepEqual(t.peers["tor-a"], {
      valid: true,
      selectedNodes: ["node-01", "node-03"],
      expectedSessions: 2,
    });
    assert.deepEqual(t.peers.one?.selectedNodes, ["node-04"]);
    const s = t.nodes["node-02"]?.sessions.find((x) => x.peerName === "tor-b");
    assert.equal(s?.port, 1790);
    assert.equal(s?.peerAS, 65002);
    assert.equal(s?.passive, false);
    assert.equal(s?.localIP, "10.0.0.2");
    const v6 = t.nodes["node-04"]?.sessions.find((x) => x.peerName === "one");
    assert.equal(v6?.localIP, "fd00::4");
    assert.equal(v6?.peerIP, "2001:db8::1");
    const all = t.nodes["node-03"]?.sessions.find((x) => x.peerName === "all");
    assert.deepEqual(all?.password, { name: "s", key: "k" });
    assert.equal(all?.kind, "external");
  });

  it("reports nodes that lack the peer's address family", () => {
    const t = computeTopology({
      nodes: [...nodes(2), { name: "v6only", underlayIPv6: "fd00::99" }],
      peers: [peer("v4peer", { peerIP: "192.0.2.1", asNumber: 65001 })],
    });
    assert.equal(t.peers.v4peer?.expectedSessions, 2);
    assert.equal(t.problems.length, 1);
    assert.match(t.problems[0]?.message ?? "", /v6only has no IPv4/);
  });

  it("peerSelector peers connect both ends, once per pair, without duplicating the mesh", () => {
    const t = computeTopology({
      config: { nodeToNodeMesh: false },
      nodes: nodes(6),
      peers: [
        peer("a-to-b", {
          nodeSelector: { matchLabels: { rack: "a" } },
          peerSelector: { matchLabels: { rack: "b" } },
        }),
      ],
    });
    assert.equal(t.sessions.length, 9);
    assert.ok(t.sessions.every((s) => s.kind === "node-peer"));
    assert.equal(t.peers["a-to-b"]?.expectedSessions, 9);
    assertSymmetric(t);
    // with the mesh on, the same pairs are already peering: no second session to one address
    const meshed = computeTopology({
      nodes: nodes(6),
      peers: [peer("all-to-all", { peerSelector: {} })],
    });
    assert.equal(meshed.sessions.length, 15);
    for (const nt of Object.values(meshed.nodes)) {
      const ips = nt.sessions.map((s) => s.peerIP);
      assert.equal(new Set(ips).size, ips.length);
    }
  });

  it("refuses bad selectors, addresses, AS numbers and combinations, per peer, without throwing", () => {
    const bad: Array<[string, BGPPeerSpec, RegExp]> = [
      [
        "bad-op",
        {
          peerIP: "192.0.2.1",
          asNumber: 65001,
          nodeSelector: { matchExpressions: [{ key: "rack", operator: "Like" as "In", values: ["a"] }] },
        },
        /operator/,
      ],
      [
        "in-no-values",
        { peerSelector: { matchExpressions: [{ key: "rack", operator: "In" }] } },
        /non-empty list/,
      ],
      [
        "exists-values",
        { peerSelector: { matchExpressions: [{ key: "rack", operator: "Exists", values: ["x"] }] } },
        /must be empty/,
      ],
      [
        "bad-key",
        { peerIP: "192.0.2.1", asNumber: 65001, nodeSelector: { matchLabels: { 'a"}; x': "y" } } },
        /invalid label key/,
      ],
      [
        "bad-value",
        { peerIP: "192.0.2.1", asNumber: 65001, nodeSelector: { matchLabels: { a: "b\nc" } } },
        /invalid label value/,
      ],
      ["not-object", { peerSelector: "rack=a" as unknown as BGPPeerSpec["peerSelector"] }, /selector object/],
      ["bad-ip", { peerIP: "192.0.2.1; }", asNumber: 65001 }, /not an IP address/],
      ["zone-ip", { peerIP: "fe80::1%eth0", asNumber: 65001 }, /not an IP address/],
      ["as-zero", { peerIP: "192.0.2.1", asNumber: 0 }, /AS number/],
      ["as-big", { peerIP: "192.0.2.1", asNumber: 4294967296 }, /AS number/],
      ["as-float", { peerIP: "192.0.2.1", asNumber: 65000.5 }, /AS number/],
      ["as-string", { peerIP: "192.0.2.1", asNumber: "65000" as unknown as number }, /AS number/],
      ["as-missing", { peerIP: "192.0.2.1" }, /required/],
      ["port", { peerIP: "192.0.2.1", asNumber: 65001, port: 70000 }, /port/],
      ["both", { peerIP: "192.0.2.1", asNumber: 65001, peerSelector: {} }, /exactly one/],
      ["neither", { asNumber: 65001 }, /exactly one/],
      [
        "node-and-selector",
        { peerIP: "192.0.2.1", asNumber: 65001, node: "node-01", nodeSelector: {} },
        /at most one/,
      ],
      ["is-a-node", { peerIP: "10.0.0.2", asNumber: 65001 }, /is node node-02/],
      ["selector-as", { peerSelector: {}, asNumber: 65001 }, /AS 64512/],
      [
        "bad-secret",
        { peerIP: "192.0.2.1", asNumber: 65001, password: { name: 'x"', key: "k" } },
        /password.name/,
      ],
    ];
    const good = peer("good", { peerIP: "192.0.2.50", asNumber: 65050 });
    const t = computeTopology({
      nodes: nodes(3),
      peers: [...bad.map(([name, spec]) => peer(name, spec)), good],
    });
    for (const [name, , re] of bad) {
      const msgs = t.problems.filter((p) => p.kind === "BGPPeer" && p.name === name).map((p) => p.message);
      assert.ok(msgs.length > 0, `${name} reported`);
      assert.ok(
        msgs.some((m) => re.test(m)),
        `${name}: ${msgs.join("; ")}`,
      );
      assert.equal(t.peers[name]?.valid, false);
      for (const nt of Object.values(t.nodes)) {
        assert.ok(!nt.sessions.some((s) => s.source === `BGPPeer/${name}`), `${name} creates no session`);
      }
    }
    assert.equal(t.peers.good?.expectedSessions, 3);
    assert.equal(t.sessions.length, 3 + 3);
  });

  it("reports a bad BGPConfiguration and falls back to defaults", () => {
    const t = computeTopology({
      config: {
        apiVersion: "weft.dev/v1alpha1",
        kind: "BGPConfiguration",
        metadata: { name: "default" },
        spec: { asNumber: -1, listenPort: 0, holdSeconds: 2 },
      },
      nodes: nodes(2),
    });
    assert.equal(t.asNumber, 64512);
    assert.equal(t.nodes["node-01"]?.listenPort, 179);
    assert.equal(t.nodes["node-01"]?.holdSeconds, 90);
    assert.equal(t.problems.length, 3);
    assert.ok(t.problems.every((p) => p.kind === "BGPConfiguration" && p.name === "default"));
  });
});

describe("graceful restart turns", () => {
  it("puts reflectors one by one, senior first, then every client together; in a mesh each node alone", () => {
    const rr = computeTopology({ nodes: nodes(5, { reflectors: { 2: "1.0.0.1", 4: "1.0.0.1" } }) });
    assert.deepEqual(
      Object.keys(rr.nodes).map((n) => gracefulRestartTurn(rr, n)),
      [2, 0, 2, 1, 2],
    );
    const mesh = computeTopology({ nodes: nodes(3) });
    assert.deepEqual(
      Object.keys(mesh.nodes).map((n) => gracefulRestartTurn(mesh, n)),
      [0, 1, 2],
    );
  });
});
