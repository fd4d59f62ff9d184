import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BGPPeer } from "../api/bgp.js";
import type { IPPool } from "../api/ippool.js";
import { formatNodeStatus } from "../cli/node/format.js";
import { desiredBgpStatus, referencedPasswords } from "../controllers/bgp/status.js";
import {
  announcements,
  bgpNodeNames,
  reflectorCandidates,
  topologyInputFrom,
  topologyNodeOf,
} from "./inputs.js";
import { bgpStatus, redact, uniquePeers } from "./node-status.js";
import { computeTopology } from "./topology.js";

const pool = (
  name: string,
  cidr: string,
  encapsulation: "BGP" | "VXLAN",
  sel?: Record<string, string>,
): IPPool => ({
  apiVersion: "weft.dev/v1alpha1",
  kind: "IPPool",
  metadata: { name },
  spec: { cidr, encapsulation, ...(sel ? { nodeSelector: { matchLabels: sel } } : {}) },
});
const node = (
  name: string,
  ip: string,
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
) => ({
  metadata: { name, labels, annotations },
  status: { addresses: [{ type: "InternalIP", address: ip }] },
});
const peer = (name: string, spec: BGPPeer["spec"], generation = 1): BGPPeer => ({
  apiVersion: "weft.dev/v1alpha1",
  kind: "BGPPeer",
  metadata: { name, generation },
  spec,
});

describe("BGP inputs from API objects", () => {
  const nodes = [
    node("a", "10.0.0.1", { c: "x" }),
    node("b", "10.0.0.2", { c: "x" }),
    node("v", "10.0.0.3", { c: "y" }),
  ];

  it("takes nodes selected by a BGP pool, or by an external peer, and no others", () => {
    const pools = [pool("p", "10.244.0.0/16", "BGP", { c: "x" }), pool("q", "10.245.0.0/16", "VXLAN")];
    assert.deepEqual([...bgpNodeNames(nodes, pools, [])].sort(), ["a", "b"]);
    const ext = peer("e", { peerIP: "10.0.0.9", asNumber: 65000, node: "v" });
    assert.deepEqual([...bgpNodeNames(nodes, pools, [ext])].sort(), ["a", "b", "v"]);
    assert.equal(topologyInputFrom({ nodes, pools, peers: [] }).nodes.length, 2);
  });

  it("takes the underlay per family, and reports a bad annotation entry on the node", () => {
    const n = {
      metadata: { name: "a", annotations: { "weft.dev/underlay-ip": "192.0.2.7, bogus" } },
      status: {
        addresses: [
          { type: "InternalIP", address: "10.0.0.1" },
          { type: "InternalIP", address: "fd00::1" },
        ],
      },
    };
    const node = topologyNodeOf(n);
    assert.equal(node?.underlayIPv4, "192.0.2.7");
    assert.equal(node?.underlayIPv6, "fd00::1");
    const t = computeTopology({ nodes: node ? [node] : [], peers: [] });
    assert.deepEqual(
      t.problems.filter((p) => p.kind === "Node").map((p) => p.message),
      ['weft.dev/underlay-ip: "bogus" is not an IP address'],
    );
  });

  it("announces only the node's own blocks of BGP pools", () => {
    const pools = [pool("p", "10.244.0.0/16", "BGP"), pool("q", "10.245.0.0/16", "VXLAN")];
    const blocks = [
      { spec: { cidr: "10.244.0.0/26", pool: "p", affinity: "a" } },
      { spec: { cidr: "10.244.0.64/26", pool: "p", affinity: "b" } },
      { spec: { cidr: "10.245.0.0/26", pool: "q", affinity: "a" } },
    ];
    assert.deepEqual(announcements("a", pools, blocks), {
      blocks: ["10.244.0.0/26"],
      poolCIDRs: ["10.244.0.0/16"],
    });
  });
});

describe("node BGP status", () => {
  const est = (peer: string, peerIP: string) => ({ peer, peerIP, asNumber: 64512, state: "Established" });

  it("is Established only when every rendered session is", () => {
    const ok = bgpStatus({
      conditions: [],
      generation: 1,
      sessions: [est("b", "10.0.0.2")],
      expected: 1,
      problems: [],
      passwordSessions: 0,
      md5Supported: true,
    });
    assert.equal(ok.conditions.find((c) => c.type === "BGP")?.reason, "Established");
    const down = bgpStatus({
      conditions: ok.conditions,
      generation: 1,
      sessions: [{ ...est("b", "10.0.0.2"), state: "Active" }],
      expected: 1,
      problems: [],
      passwordSessions: 0,
      md5Supported: true,
    });
    const c = down.conditions.find((x) => x.type === "BGP");
    assert.equal(c?.status, "False");
    assert.match(c?.message ?? "", /b \(10\.0\.0\.2\) Active/);
  });

  it("reports a kernel without TCP MD5 when a password is configured", () => {
    const s = bgpStatus({
      conditions: [],
      generation: 1,
      sessions: [],
      expected: 0,
      problems: [],
      passwordSessions: 2,
      md5Supported: false,
    });
    const c = s.conditions.find((x) => x.type === "BGPPasswords");
    assert.equal(c?.status, "False");
    assert.equal(c?.reason, "TCPMD5Unsupported");
  });

  it("never lets a known secret through, in info or in messages", () => {
    const s = bgpStatus({
      conditions: [],
      generation: 1,
      sessions: [{ ...est("b", "10.0.0.2"), state: "Idle", info: "error hunter2" }],
      expected: 1,
      problems: [],
      applyError: "line 3: unexpected hunter2",
      passwordSessions: 1,
      md5Supported: true,
      secrets: ["hunter2"],
    });
    assert.ok(!JSON.stringify(s).includes("hunter2"));
    assert.equal(redact("a hunter2 b hunter2", ["hunter2"]), "a *** b ***");
  });

  it("keeps status keys unique", () => {
    const u = uniquePeers([est("x", "10.0.0.2"), est("x", "fd00::2")]);
    assert.deepEqual(
      u.map((s) => s.peer),
      ["x/10.0.0.2", "x/fd00::2"],
    );
  });
});

describe("BGPPeer and BGPConfiguration status", () => {
  const nodes = [node("a", "10.0.0.1"), node("b", "10.0.0.2"), node("c", "10.0.0.3")];
  const pools = [pool("p", "10.244.0.0/16", "BGP")];

  it("counts selected nodes and sessions; Ready and not Invalid", () => {
    const d = desiredBgpStatus({
      nodes,
      pools,
      peers: [peer("tor", { peerIP: "10.0.0.254", asNumber: 65000 }, 4)],
    });
    const s = d.peers.get("tor");
    assert.deepEqual(s?.status, {
      observedGeneration: 4,
      selectedNodes: ["a", "b", "c"],
      expectedSessions: 3,
    });
    assert.equal(s?.conditions.find((c) => c.type === "Ready")?.status, "True");
    assert.equal(s?.conditions.find((c) => c.type === "Invalid")?.status, "False");
  });

  it("marks an invalid spec and an unusable password, without the password", () => {
    const bad = peer("bad", { peerIP: "10.0.0.1", asNumber: 65000 });
    const pw = peer("pw", { peerIP: "10.0.0.254", asNumber: 65000, password: { name: "s", key: "k" } });
    const passwords = new Map([
      ["/s/k", "password contains a double quote, which a BIRD 2 string cannot hold"],
    ]);
    const d = desiredBgpStatus({ nodes, pools, peers: [bad, pw], passwords });
    assert.equal(d.peers.get("bad")?.conditions.find((c) => c.type === "Invalid")?.reason, "InvalidSpec");
    assert.match(d.peers.get("bad")?.conditions[0]?.message ?? "", /is node a/);
    const r = d.peers.get("pw")?.conditions.find((c) => c.type === "Ready");
    assert.equal(r?.reason, "InvalidPassword");
    assert.match(r?.message ?? "", /Secret s, key k\): password contains a double quote/);
    assert.deepEqual(referencedPasswords([bad, pw]), [{ name: "s", key: "k" }]);
  });

  it("says when a peer selects no node", () => {
    const d = desiredBgpStatus({
      nodes,
      pools,
      peers: [peer("none", { peerIP: "10.0.0.254", asNumber: 65000, node: "zz" })],
    });
    assert.equal(d.peers.get("none")?.conditions.find((c) => c.type === "Ready")?.reason, "NoNodesSelected");
  });

  it("counts Established sessions from the nodes' reports; Ready is False while one is down, naming it", () => {
    const nns = (n: string, sessions: Array<[string, string]>) => ({
      apiVersion: "weft.dev/v1alpha1" as const,
      kind: "NodeNetworkStatus" as const,
      metadata: { name: n },
      spec: { node: n },
      status: {
        bgpSessions: sessions.map(([peerIP, state]) => ({ peer: peerIP, peerIP, asNumber: 1, state })),
      },
    });
    const tor = peer("tor", { peerIP: "10.0.0.254", asNumber: 65000 });
    const config = {
      apiVersion: "weft.dev/v1alpha1" as const,
      kind: "BGPConfiguration" as const,
      metadata: { name: "default" },
      spec: {},
    };
    const d = desiredBgpStatus({
      nodes,
      pools,
      peers: [tor],
      config,
      nodeStatuses: [
        nns("a", [
          ["10.0.0.254", "Established"],
          ["10.0.0.2", "Established"],
          ["10.0.0.3", "Established"],
        ]),
        nns("b", [
          ["10.0.0.254", "Active"],
          ["10.0.0.3", "Established"],
        ]),
      ],
    });
    const t = d.peers.get("tor");
    assert.equal(t?.status.establishedSessions, 1);
    assert.equal(t?.status.expectedSessions, 3);
    const ready = t?.conditions.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "False");
    assert.equal(ready?.reason, "SessionsDown");
    assert.match(
      ready?.message ?? "",
      /1\/3 session\(s\) established; down: b -> tor \(10\.0\.0\.254\) Active, c -> tor \(10\.0\.0\.254\) not reported/,
    );
    assert.equal(d.config?.status.establishedSessions, 3);
    assert.equal(d.config?.conditions.find((c) => c.type === "Ready")?.status, "True");
  });

  it("turns Node readiness, age and labels into reflector candidates (BGP nodes only)", () => {
    const c = reflectorCandidates({
      nodes: [
        {
          metadata: {
            name: "a",
            labels: { z: "1" },
            creationTimestamp: new Date("2030-01-01T00:00:00.123Z"),
          },
          status: {
            addresses: [{ type: "InternalIP", address: "10.0.0.1" }],
            conditions: [{ type: "Ready", status: "Unknown", lastTransitionTime: "2030-01-02T00:00:00Z" }],
          },
        },
        node("b", "10.0.0.2"),
      ],
      pools,
      peers: [],
    });
    assert.deepEqual(c[0], {
      name: "a",
      labels: { z: "1" },
      annotations: {},
      ready: false,
      readySince: "2030-01-02T00:00:00Z",
      creationTimestamp: "2030-01-01T00:00:00Z",
      deleting: false,
      addressed: true,
    });
    assert.equal(c[1]?.ready, undefined);
  });

  it("summarises the configuration: mesh sessions among the BGP nodes", () => {
    const config = {
      apiVersion: "weft.dev/v1alpha1" as const,
      kind: "BGPConfiguration" as const,
      metadata: { name: "default", generation: 2 },
      spec: {},
    };
    const d = desiredBgpStatus({ nodes, pools, peers: [], config });
    assert.deepEqual(d.config?.status, {
      observedGeneration: 2,
      selectedNodes: ["a", "b", "c"],
      expectedSessions: 3,
    });
    assert.match(d.config?.conditions[0]?.message ?? "", /mesh on/);
  });
});

describe("weftctl node status text", () => {
  it("prints sessions, conditions and owned counts", () => {
    const now = new Date("2030-01-01T01:00:00Z");
    const text = formatNodeStatus(
      {
        apiVersion: "weft.dev/v1alpha1",
        kind: "NodeNetworkStatus",
        metadata: { name: "n1" },
        spec: { node: "n1" },
        status: {
          owned: { routes: 2, neighbors: 0, fdb: 0 },
          bgpSessions: [
            {
              peer: "n2",
              peerIP: "10.0.0.2",
              asNumber: 64512,
              state: "Established",
              since: "2030-01-01T00:55:00Z",
              routesImported: 1,
              routesExported: 1,
            },
          ],
          conditions: [
            {
              type: "BGP",
              status: "True",
              reason: "Established",
              message: "1/1 sessions established",
              lastTransitionTime: "2030-01-01T00:55:00Z",
            },
          ],
        },
      },
      now,
    );
    assert.match(text, /Node n1: no status reported yet/);
    assert.match(text, /2 routes, 0 neighbors, 0 FDB entries/);
    assert.match(text, /BGP sessions \(1\/1 established\)/);
    assert.match(text, /n2\s+10\.0\.0\.2\s+64512\s+Established\s+5m0s\s+1\s+1/);
    assert.match(text, /BGP\s+True\s+Established\s+5m0s\s+1\/1 sessions established/);
  });
});
