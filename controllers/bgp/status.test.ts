import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BGPConfiguration, BGPPeer, IPPool, NodeLike, NodeNetworkStatus } from "../../api/index.js";
import { desiredBgpStatus, referencedPasswords } from "./status.js";

const node = (i: number): NodeLike => ({
  metadata: { name: `n${i}`, labels: { bgp: "yes" } },
  status: { addresses: [{ type: "InternalIP", address: `10.0.0.${i}` }] },
});
const nodes = [1, 2, 3].map(node);
const pool: IPPool = {
  apiVersion: "weft.dev/v1alpha1",
  kind: "IPPool",
  metadata: { name: "p" },
  spec: { cidr: "10.244.0.0/16", encapsulation: "BGP" },
};
const peer: BGPPeer = {
  apiVersion: "weft.dev/v1alpha1",
  kind: "BGPPeer",
  metadata: { name: "tor", generation: 4 },
  spec: {
    peerIP: "192.0.2.1",
    asNumber: 65001,
    nodeSelector: { matchLabels: { bgp: "yes" } },
    password: { name: "tor-pw", key: "password" },
  },
};
const config: BGPConfiguration = {
  apiVersion: "weft.dev/v1alpha1",
  kind: "BGPConfiguration",
  metadata: { name: "default", generation: 2 },
  spec: {},
};

/** What node `i` reports: its sessions by peer address and state. */
function reported(i: number, sessions: Record<string, string>): NodeNetworkStatus {
  return {
    apiVersion: "weft.dev/v1alpha1",
    kind: "NodeNetworkStatus",
    metadata: { name: `n${i}` },
    spec: { node: `n${i}` },
    status: {
      bgpSessions: Object.entries(sessions).map(([peerIP, state]) => ({
        peer: peerIP === "192.0.2.1" ? "tor" : "mesh",
        peerIP,
        state,
      })),
    },
  } as NodeNetworkStatus;
}

/** Every node with the ToR and the mesh (to the other two) in `state`, except overrides. */
function allReports(
  state: string,
  overrides: Record<number, Record<string, string>> = {},
): NodeNetworkStatus[] {
  return [1, 2, 3].map((i) => {
    const s: Record<string, string> = { "192.0.2.1": state };
    for (const j of [1, 2, 3]) if (j !== i) s[`10.0.0.${j}`] = state;
    return reported(i, { ...s, ...overrides[i] });
  });
}

describe("BGP status: Established counts and Ready", () => {
  it("counts every expected session Established: Ready True with n/n in the message", () => {
    const d = desiredBgpStatus({
      nodes,
      pools: [pool],
      peers: [peer],
      config,
      nodeStatuses: allReports("Established"),
    });
    const p = d.peers.get("tor");
    assert.equal(p?.status.expectedSessions, 3);
    assert.equal(p?.status.establishedSessions, 3);
    const ready = p?.conditions.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "True");
    assert.equal(ready?.reason, "Established");
    assert.match(ready?.message ?? "", /^3\/3 session\(s\) established/);
    assert.equal(d.config?.status.expectedSessions, 3, "mesh of 3 nodes: 3 node-to-node sessions");
    assert.equal(d.config?.status.establishedSessions, 3);
    assert.equal(d.config?.conditions.find((c) => c.type === "Ready")?.status, "True");
  });

  it("is Ready False while one expected session is down, naming it", () => {
    const d = desiredBgpStatus({
      nodes,
      pools: [pool],
      peers: [peer],
      config,
      nodeStatuses: allReports("Established", { 2: { "192.0.2.1": "Active" } }),
    });
    const p = d.peers.get("tor");
    assert.equal(p?.status.establishedSessions, 2);
    assert.equal(p?.status.expectedSessions, 3);
    const ready = p?.conditions.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "False");
    assert.equal(ready?.reason, "SessionsDown");
    assert.match(
      ready?.message ?? "",
      /2\/3 session\(s\) established; down: n2 -> tor \(192\.0\.2\.1\) Active/,
    );
    // the mesh is unaffected by the ToR session
    assert.equal(d.config?.status.establishedSessions, 3);
  });

  it("counts a session a node has not reported yet as down", () => {
    const reports = allReports("Established").filter((r) => r.spec.node !== "n3");
    const d = desiredBgpStatus({ nodes, pools: [pool], peers: [peer], config, nodeStatuses: reports });
    assert.equal(d.peers.get("tor")?.status.establishedSessions, 2);
    assert.match(
      d.peers.get("tor")?.conditions.find((c) => c.type === "Ready")?.message ?? "",
      /n3 -> tor \(192\.0\.2\.1\) not reported/,
    );
    // a mesh session is read from its first end, and n1 and n2 report both of theirs with n3
    assert.equal(d.config?.status.establishedSessions, 3);
  });

  it("without node reports, Ready means configured and nothing is counted", () => {
    const d = desiredBgpStatus({ nodes, pools: [pool], peers: [peer], config });
    const p = d.peers.get("tor");
    assert.equal(p?.status.establishedSessions, undefined);
    assert.equal(p?.conditions.find((c) => c.type === "Ready")?.reason, "Configured");
  });

  it("a Secret verdict makes the peer Invalid and not Ready, naming the Secret, never a value", () => {
    const d = desiredBgpStatus({
      nodes,
      pools: [pool],
      peers: [peer],
      passwords: new Map([["/tor-pw/password", "Secret kube-system/tor-pw not found"]]),
      nodeStatuses: allReports("Established"),
    });
    const conds = d.peers.get("tor")?.conditions ?? [];
    const ready = conds.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "False");
    assert.equal(ready?.reason, "InvalidPassword");
    assert.match(ready?.message ?? "", /Secret tor-pw, key password\): Secret kube-system\/tor-pw not found/);
    assert.equal(conds.find((c) => c.type === "Invalid")?.status, "True");
  });

  it("lists each referenced Secret key once", () => {
    const other = { ...peer, metadata: { name: "tor2" } };
    assert.deepEqual(referencedPasswords([peer, other], config), [{ name: "tor-pw", key: "password" }]);
  });
});
