import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { computeTopology } from "../../bgp/index.js";
import { nodes, peer } from "../../bgp/topology-support.js";
import { topologyDot, topologyText } from "./render.js";

describe("topology output", () => {
  it("prints text and Graphviz with one edge per session and hostile names quoted", () => {
    const t = computeTopology({
      nodes: nodes(4, { reflectors: { 1: "1.0.0.1" } }),
      peers: [peer('evil"-- "x', { peerIP: "192.0.2.1", asNumber: 65001, node: "node-02" })],
    });
    const text = topologyText(t);
    assert.match(text, /mesh off; reflectors: node-01; sessions: 4/);
    assert.equal(text.trim().split("\n").length, 1 + 1 + 4);
    assert.match(text, /^reflector node-01: annotated weft\.dev\/route-reflector-cluster-id$/m);
    const dot = topologyDot(t);
    assert.equal(dot.split("\n").filter((l) => l.includes(" -- ")).length, 4);
    assert.ok(dot.includes('"peer:evil\\"-- \\"x"'));
    assert.match(dot, /"node-01" \[shape=doublecircle, label="node-01\\nRR 1.0.0.1"\]/);
    // every quote inside an identifier is escaped: stripping escaped quotes leaves balanced quotes per line
    for (const line of dot.split("\n")) {
      assert.equal(line.replace(/\\"/g, "").split('"').length % 2, 1, line);
    }
  });
});
