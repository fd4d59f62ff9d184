import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import type { BGPPeer, BGPPeerSpec } from "../api/bgp.js";
import { ANNOTATIONS } from "../api/meta.js";
import {
  MAX_PASSWORD_BYTES,
  passwordProblem,
  protocolName,
  type RenderInput,
  ROUTE_PROTOCOL_BGP,
  renderBirdConfig,
  roleChanges,
} from "./render.js";
import { computeTopology, type NodeTopology, type TopologyInput, type TopologyNode } from "./topology.js";
import { secretRefKey } from "./validate.js";

const dir = mkdtempSync(join(tmpdir(), `weft-bird-render-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

let birdChecked = false;
/** `bird -p -c FILE`: BIRD's own parser is the judge of whether the file is valid. */
function birdParses(config: string, label: string): void {
  if (!birdChecked) {
    try {
      execFileSync("bird", ["--version"], { stdio: "pipe" });
    } catch {
      assert.fail("BIRD 2 is needed for this test: apt-get install bird2 (provides /usr/sbin/bird)");
    }
    birdChecked = true;
  }
  const file = join(dir, `${label.replace(/[^a-z0-9]/gi, "_")}.conf`);
  writeFileSync(file, config);
  try {
    execFileSync("bird", ["-p", "-c", file], { stdio: "pipe" });
  } catch (err) {
    const e = err as { stderr?: Buffer };
    assert.fail(`bird -p rejected ${label}: ${e.stderr?.toString()}`);
  }
}

function nodes(n: number, rr: Record<number, string> = {}, v6 = false): TopologyNode[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `node-${i + 1}`,
    labels: { idx: String(i + 1) },
    annotations: (rr[i + 1] ? { [ANNOTATIONS.routeReflectorClusterID]: rr[i + 1] } : {}) as Record<
      string,
      string
    >,
    underlayIPv4: `10.0.0.${i + 1}`,
    ...(v6 ? { underlayIPv6: `fd00::${i + 1}` } : {}),
  }));
}

function peer(name: string, spec: BGPPeerSpec): BGPPeer {
  return { apiVersion: "weft.dev/v1alpha1", kind: "BGPPeer", metadata: { name }, spec };
}

function render(node: NodeTopology, extra: Partial<RenderInput> = {}) {
  return renderBirdConfig({ node, blocks: ["10.244.1.0/26"], poolCIDRs: ["10.244.0.0/16"], ...extra });
}

describe("renderBirdConfig", () => {
  it("renders router id, AS, blackholes, filters, graceful restart and one protocol per session", () => {
    const t = computeTopology({ nodes: nodes(3), config: { gracefulRestartSeconds: 60 } });
    const r = render(t.nodes["node-2"] as NodeTopology, { blocks: ["10.244.1.0/26", "10.244.1.64/26"] });
    const c = r.config;
    assert.match(c, /^router id 10\.0\.0\.2;$/m);
    assert.match(c, /^ {2}route 10\.244\.1\.0\/26 blackhole;$/m);
    assert.match(c, /^ {2}route 10\.244\.1\.64\/26 blackhole;$/m);
    assert.match(c, /^ {2}graceful restart time 60;$/m);
    assert.match(
      c,
      /export filter \{ if source != RTS_BGP then reject; if net ~ \[ 10\.244\.1\.0\/26\+, 10\.244\.1\.64\/26\+ \] then reject; accept; \};/,
    );
    assert.equal(r.protocols.length, 2);
    assert.equal(c.match(/^protocol bgp /gm)?.length, 2);
    const toN1 = r.protocols.find((p) => p.session.peerNode === "node-1");
    const toN3 = r.protocols.find((p) => p.session.peerNode === "node-3");
    assert.ok(toN1 && toN3);
    // node-2 is above node-1 (passive towards it) and below node-3 (dials it)
    const block = (name: string) => c.slice(c.indexOf(`protocol bgp ${name} `)).split("\n}\n")[0] as string;
    assert.match(block(toN1.name), /passive on;/);
    assert.doesNotMatch(block(toN3.name), /passive/);
    assert.match(block(toN1.name), /local 10\.0\.0\.2 port 179 as 64512;/);
    assert.match(block(toN1.name), /neighbor 10\.0\.0\.1 port 179 as 64512;/);
    assert.match(block(toN1.name), /export filter weft_export_own4;/);
    assert.match(block(toN1.name), /description "node-1";/);
    assert.deepEqual(r.problems, []);
    birdParses(c, "mesh");
  });

  it("a new block changes the static and kernel protocols only, never a BGP session or its filters", () => {
    // BIRD reloads every BGP channel whose filter changed and asks its peer to refresh
    const t = computeTopology({ nodes: nodes(4) });
    const node = t.nodes["node-2"] as NodeTopology;
    const sections = (c: string) =>
      c
        .split(/\n(?=protocol |filter |template )/)
        .filter((x) => !x.startsWith("protocol static ") && !x.startsWith("protocol kernel "));
    const one = render(node, { blocks: ["10.244.1.0/26"] });
    const two = render(node, { blocks: ["10.244.1.0/26", "10.244.9.64/26"] });
    assert.notEqual(one.config, two.config);
    assert.deepEqual(sections(two.config), sections(one.config));
    assert.match(two.config, /route 10\.244\.9\.64\/26 blackhole;/);
    assert.match(two.config, /if net ~ \[ 10\.244\.1\.0\/26\+, 10\.244\.9\.64\/26\+ \] then reject;/);
    birdParses(two.config, "two blocks");
  });

  it("marks clients on a reflector with rr client and the cluster id; the senior reflector treats the junior as a client", () => {
    const t = computeTopology({ nodes: nodes(4, { 1: "1.0.0.1", 2: "1.0.0.1" }) });
    const rr = render(t.nodes["node-1"] as NodeTopology);
    const blocks = rr.config.split(/^protocol bgp /m).slice(1);
    assert.equal(blocks.length, 3);
    // node-1 is senior (annotated, first by name): all three peers are its clients
    for (const b of blocks) {
      assert.match(b, /rr client;/);
      assert.match(b, /rr cluster id 1\.0\.0\.1;/);
      assert.match(b, /export filter weft_export_cluster4;/);
    }
    assert.match(rr.config, /if source = RTS_BGP && net ~ \[ 10\.244\.0\.0\/16\+ \] then accept;/);
    birdParses(rr.config, "reflector");
    // the junior reflector treats the senior as a plain peer, and its clients as clients
    const junior = render(t.nodes["node-2"] as NodeTopology)
      .config.split(/^protocol bgp /m)
      .slice(1);
    const toSenior = junior.find((b) => b.includes("neighbor 10.0.0.1 "));
    assert.doesNotMatch(toSenior ?? "", /rr client/);
    assert.match(toSenior ?? "", /export filter weft_export_own4;/);
    assert.equal(junior.filter((b) => b.includes("rr client;")).length, 2);
    const client = render(t.nodes["node-3"] as NodeTopology);
    assert.doesNotMatch(client.config, /rr client/);
    assert.equal(client.protocols.length, 2);
    birdParses(client.config, "client");
  });

  it("renders dual stack with one kernel and static protocol per family", () => {
    const t = computeTopology({ nodes: nodes(3, {}, true) });
    const r = render(t.nodes["node-1"] as NodeTopology, {
      blocks: ["10.244.1.0/26", "fd10:0:0:0::/122"],
      poolCIDRs: ["10.244.0.0/16", "fd10::/64"],
    });
    assert.match(r.config, /protocol kernel weft_kernel6/);
    assert.match(r.config, /route fd10::\/122 blackhole;/);
    assert.match(r.config, /neighbor fd00::2 port 179 as 64512;/);
    assert.equal(r.protocols.length, 4);
    birdParses(r.config, "dualstack");
  });

  it("keeps protocol names stable when unrelated nodes, blocks and peers change", () => {
    const small = computeTopology({ nodes: nodes(3) });
    const big = computeTopology({
      nodes: nodes(9),
      peers: [peer("tor", { peerIP: "192.0.2.1", asNumber: 65001 })],
    });
    const a = render(small.nodes["node-1"] as NodeTopology);
    const b = render(big.nodes["node-1"] as NodeTopology, { blocks: ["10.244.1.0/26", "10.244.9.0/26"] });
    for (const p of a.protocols) {
      const same = b.protocols.find((q) => q.session.peerIP === p.session.peerIP);
      assert.equal(same?.name, p.name);
    }
    // names are identifiers BIRD accepts, whatever the peer is called
    for (const p of b.protocols) assert.match(p.name, /^(node|peer)_[0-9a-f]{12}$/);
  });

  it("external peers: eBGP to the peer's AS and port, nothing imported, the cluster exported", () => {
    const t = computeTopology({
      nodes: nodes(2),
      peers: [
        peer("tor", { peerIP: "192.0.2.1", asNumber: 65001, port: 1790, password: { name: "s", key: "k" } }),
      ],
    });
    const r = render(t.nodes["node-1"] as NodeTopology, {
      passwords: { [secretRefKey({ name: "s", key: "k" })]: "pa$$ w;}{#\\" },
    });
    const ext = r.config.slice(r.config.indexOf("protocol bgp peer_"));
    assert.match(ext, /neighbor 192\.0\.2\.1 port 1790 as 65001;/);
    assert.match(ext, /import none;/);
    assert.match(ext, /if proto = "weft_blocks4" then accept;/);
    assert.match(ext, /if source = RTS_BGP && net ~ \[ 10\.244\.0\.0\/16\+ \] then accept;/);
    assert.ok(ext.includes('  password "pa$$ w;}{#\\";\n'));
    birdParses(r.config, "external-password");
  });

  it("leaves out a session whose password is missing or unsafe, and never prints the password", () => {
    const hostile = [
      'a"; } protocol bgp evil { neighbor 1.2.3.4 as 1; ',
      "line\nbreak",
      "nul\u0000byte",
      "tab\there",
      "x".repeat(MAX_PASSWORD_BYTES + 1),
      "",
    ];
    for (const pw of hostile) {
      const t = computeTopology({
        nodes: nodes(2),
        peers: [peer("tor", { peerIP: "192.0.2.1", asNumber: 65001, password: { name: "s", key: "k" } })],
      });
      const r = render(t.nodes["node-1"] as NodeTopology, { passwords: { "/s/k": pw } });
      assert.equal(r.protocols.length, 1, "only the mesh session remains");
      assert.doesNotMatch(r.config, /password/);
      assert.equal(r.problems.length, 1);
      assert.equal(r.problems[0]?.peerName, "tor");
      if (pw.length > 3) assert.ok(!r.problems[0]?.message.includes(pw), "the password is not echoed");
      birdParses(r.config, `hostile-password-${hostile.indexOf(pw)}`);
    }
    const t = computeTopology({
      nodes: nodes(2),
      peers: [peer("tor", { peerIP: "192.0.2.1", asNumber: 65001, password: { name: "s", key: "k" } })],
    });
    const missing = render(t.nodes["node-1"] as NodeTopology);
    assert.match(missing.problems[0]?.message ?? "", /not available/);
  });

  it("explains why a password is refused", () => {
    assert.match(passwordProblem('a"b') ?? "", /double quote/);
    assert.match(passwordProblem("a\nb") ?? "", /control character/);
    assert.match(passwordProblem("é".repeat(41)) ?? "", /80 bytes/);
    assert.equal(passwordProblem("é".repeat(40)), undefined);
    assert.equal(passwordProblem("ok;}{#\\'"), undefined);
  });

  it("never lets names, selectors or cluster ids change the configuration (property, checked by bird -p)", () => {
    const hostileText = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom(
        '"',
        "}",
        "{",
        ";",
        "\\",
        "\n",
        '"; }\nprotocol bgp x {',
        "#",
        "/*",
        'include "/etc/passwd";',
      ),
    );
    let runs = 0;
    fc.assert(
      fc.property(hostileText, hostileText, hostileText, hostileText, (peerName, labelValue, cid, pw) => {
        const ns = nodes(3, { 1: cid });
        const t = computeTopology({
          nodes: ns,
          peers: [
            peer(peerName || "x", {
              peerIP: "192.0.2.1",
              asNumber: 65001,
              nodeSelector: { matchLabels: { idx: labelValue } },
              password: { name: "s", key: "k" },
            }),
            peer(`${peerName}2`, { peerIP: "192.0.2.2", asNumber: 65002, password: { name: "s", key: "k" } }),
          ],
        });
        for (const name of Object.keys(t.nodes)) {
          const r = render(t.nodes[name] as NodeTopology, { passwords: { "/s/k": pw } });
          // the only protocols are the rendered sessions plus Weft's fixed ones
          const protos = r.config.match(/^protocol \S+ \S+/gm) ?? [];
          const fixed = [
            "protocol device {",
            "protocol direct weft_direct",
            "protocol kernel weft_kernel4",
            "protocol static weft_blocks4",
          ];
          assert.deepEqual(
            protos
              .filter((p) => !fixed.some((f) => p.startsWith(f.slice(0, 20))))
              .map((p) => p.split(" ")[2]),
            r.protocols.map((p) => p.name),
          );
          // a password appears only as the whole content of one string on its own line
          for (const line of r.config.split("\n").filter((l) => l.includes("password"))) {
            assert.equal(line, `  password "${pw}";`);
            assert.equal(passwordProblem(pw), undefined);
          }
          if (runs++ < 60) birdParses(r.config, `property-${runs}`);
        }
      }),
      { numRuns: 40 },
    );
  });

  it("refuses values that the topology should never hand over", () => {
    const t = computeTopology({ nodes: nodes(2) });
    const n = t.nodes["node-1"] as NodeTopology;
    assert.throws(() => render(n, { blocks: ["10.244.1.1/26"] }), /not a CIDR/);
    assert.throws(() => render({ ...n, routerID: "1.2.3.4; }" }), /router id/);
    assert.throws(() => render({ ...n, localAS: 0 }), /AS/);
    const bad = render({
      ...n,
      sessions: [{ ...(n.sessions[0] as NodeTopology["sessions"][number]), peerIP: "10.0.0.2; }" }],
    });
    assert.equal(bad.protocols.length, 0);
    assert.match(bad.problems[0]?.message ?? "", /not a valid address/);
  });

  it("uses BIRD's fixed kernel route protocol number", () => {
    assert.equal(ROUTE_PROTOCOL_BGP, 12);
    assert.notEqual(ROUTE_PROTOCOL_BGP, 0x57);
  });

  it("derives the protocol name from the session source and address only", () => {
    const t = computeTopology({ nodes: nodes(2) });
    const s = t.nodes["node-1"]?.sessions[0];
    assert.ok(s);
    assert.equal(protocolName(s), protocolName({ ...s, passive: !s.passive, port: 1 }));
    assert.notEqual(protocolName(s), protocolName({ ...s, peerIP: "10.0.0.9" }));
  });

  it("names a node-to-node session by the peer's address alone, so a mesh session that becomes a reflector session stays one protocol", () => {
    const mesh = computeTopology({ nodes: nodes(3) });
    const rr = computeTopology({ nodes: nodes(3, { 2: "1.0.0.1" }) });
    const before = render(mesh.nodes["node-1"] as NodeTopology).protocols.find(
      (p) => p.session.peerIP === "10.0.0.2",
    );
    const after = render(rr.nodes["node-1"] as NodeTopology).protocols.find(
      (p) => p.session.peerIP === "10.0.0.2",
    );
    assert.equal(before?.session.kind, "mesh");
    assert.equal(after?.session.kind, "rr-client");
    assert.equal(before?.name, after?.name);
  });

  it("renders BFD once as a protocol and per session with its interval and multiplier", () => {
    const input: TopologyInput = {
      nodes: nodes(2),
      config: { bfd: { enabled: true, intervalMilliseconds: 100, multiplier: 5 } },
      peers: [peer("tor", { peerIP: "192.0.2.1", asNumber: 65001, bfd: { enabled: true } })],
    };
    const r = render(computeTopology(input).nodes["node-1"] as NodeTopology);
    assert.equal(r.config.match(/^protocol bfd weft_bfd \{$/gm)?.length, 1);
    assert.match(r.config, /neighbor 10\.0\.0\.2 [^}]*bfd \{ interval 100 ms; multiplier 5; \};/s);
    assert.match(r.config, /neighbor 192\.0\.2\.1 [^}]*bfd \{ interval 300 ms; multiplier 3; \};/s);
    birdParses(r.config, "bfd");
    const off = render(
      computeTopology({ ...input, config: { bfd: { enabled: false } }, peers: [] }).nodes[
        "node-1"
      ] as NodeTopology,
    );
    assert.doesNotMatch(off.config, /bfd/);
    // out of range: reported on the configuration, never rendered
    const bad = computeTopology({ ...input, config: { bfd: { enabled: true, intervalMilliseconds: 1 } } });
    assert.match(bad.problems.map((p) => p.message).join(), /bfd\.intervalMilliseconds: 1 is out of range/);
    assert.doesNotMatch(render(bad.nodes["node-1"] as NodeTopology).config, /interval 1 ms/);
  });

  it("announces Service ranges and Local LoadBalancer addresses to external peers only, with the communities of their class and of the peer", () => {
    const t = computeTopology({
      nodes: nodes(2),
      config: {
        serviceClusterIPs: ["10.96.0.0/12"],
        serviceLoadBalancerIPs: ["192.0.2.128/25"],
        communities: {
          blocks: ["65000:1"],
          serviceClusterIPs: ["65000:2"],
          serviceLoadBalancerIPs: ["65000:3"],
        },
      },
      peers: [peer("tor", { peerIP: "192.0.2.1", asNumber: 65001, communities: ["65001:9"] })],
    });
    const r = render(t.nodes["node-1"] as NodeTopology, {
      loadBalancerIngress: ["192.0.2.130", "198.51.100.7", "not-an-ip"],
    });
    assert.match(
      r.config,
      /protocol static weft_svc_cluster4 \{\n {2}ipv4;\n {2}route 10\.96\.0\.0\/12 blackhole;\n\}/,
    );
    assert.match(
      r.config,
      /route 192\.0\.2\.128\/25 blackhole;\n {2}route 192\.0\.2\.130\/32 blackhole;\n\}/,
    );
    assert.doesNotMatch(
      r.config,
      /198\.51\.100\.7/,
      "an address outside serviceLoadBalancerIPs is not announced",
    );
    const ext = r.config.slice(r.config.indexOf("protocol bgp peer_"));
    assert.match(
      ext,
      /if proto = "weft_svc_cluster4" then \{ bgp_community\.add\(\(65000,2\)\); bgp_community\.add\(\(65001,9\)\); accept; \}/,
    );
    assert.match(
      ext,
      /if proto = "weft_svc_lb4" then \{ bgp_community\.add\(\(65000,3\)\); bgp_community\.add\(\(65001,9\)\); accept; \}/,
    );
    assert.match(
      ext,
      /if proto = "weft_blocks4" then \{ bgp_community\.add\(\(65000,1\)\); bgp_community\.add\(\(65001,9\)\); accept; \}/,
    );
    // nodes get blocks only; the kernel gets BGP routes only
    const mesh = r.config.slice(
      r.config.indexOf("protocol bgp node_"),
      r.config.indexOf("protocol bgp peer_"),
    );
    assert.match(mesh, /export filter weft_export_own4;/);
    assert.match(
      r.config,
      /filter weft_export_own4 \{\n {2}if proto = "weft_blocks4" then accept;\n {2}reject;/,
    );
    birdParses(r.config, "services");
    // a node the serviceNodeSelector leaves out announces no Service address
    const sel = computeTopology({
      nodes: nodes(2),
      config: { serviceClusterIPs: ["10.96.0.0/12"], serviceNodeSelector: { matchLabels: { idx: "2" } } },
    });
    assert.doesNotMatch(render(sel.nodes["node-1"] as NodeTopology).config, /weft_svc/);
    assert.equal(sel.nodes["node-2"]?.services?.clusterIPs[0], "10.96.0.0/12");
  });

  it("refuses a community that is not N:N with a problem naming the field", () => {
    const t = computeTopology({
      nodes: nodes(2),
      config: { communities: { blocks: ["65536:1", "x"] } },
      peers: [peer("tor", { peerIP: "192.0.2.1", asNumber: 65001, communities: ["1:2:3"] })],
    });
    const msgs = t.problems.map((p) => `${p.kind}/${p.name}: ${p.message}`).join("\n");
    assert.match(msgs, /BGPConfiguration\/default: communities\.blocks\[0\]: "65536:1" is not a community/);
    assert.match(msgs, /BGPPeer\/tor: communities\[0\]: "1:2:3" is not a community/);
    assert.equal(t.peers.tor?.valid, false);
    birdParses(render(t.nodes["node-1"] as NodeTopology).config, "bad-community");
  });

  it("learns the pools from an external peer in the nodes' own AS (an external reflector), nothing from other ASes", () => {
    const t = computeTopology({
      nodes: nodes(2),
      config: { nodeToNodeMesh: false },
      peers: [
        peer("frr", { peerIP: "192.0.2.1", asNumber: 64512 }),
        peer("tor", { peerIP: "192.0.2.2", asNumber: 65001 }),
      ],
    });
    const r = render(t.nodes["node-1"] as NodeTopology);
    const [rrPeer, tor] = ["192.0.2.1", "192.0.2.2"].map(
      (ip) => r.config.slice(r.config.indexOf(`neighbor ${ip} `)).split("\n}\n")[0] ?? "",
    );
    assert.match(rrPeer ?? "", /import filter weft_import4;[\s\S]*gateway recursive;/);
    assert.match(tor ?? "", /import none;/);
    birdParses(r.config, "ibgp-external");
  });

  it("sees a role change of an existing session (a graceful restart is due), and none when a node only gains sessions", () => {
    const input = (
      rr: Record<number, string>,
      status?: Array<{ node: string; since: string }>,
      gone?: string,
    ): TopologyInput => ({
      nodes: nodes(4, rr).filter((n) => n.name !== gone),
      config: {
        apiVersion: "weft.dev/v1alpha1",
        kind: "BGPConfiguration",
        metadata: { name: "default" },
        spec: { routeReflectors: { count: 2 } },
        status: {
          routeReflectors: (status ?? []).map((s) => ({
            node: s.node,
            clusterID: "255.0.0.1",
            source: "Automatic",
            state: "Active",
            reason: "test",
            since: s.since,
          })),
        },
      },
    });
    const conf = (i: TopologyInput, n: string) => render(computeTopology(i).nodes[n] as NodeTopology).config;
    const two = input({}, [
      { node: "node-1", since: "2026-01-01T00:00:00Z" },
      { node: "node-2", since: "2026-01-01T00:00:00Z" },
    ]);
    // node-1 is gone and node-3 joins as a reflector: every remaining session keeps its role
    const after = [
      { node: "node-2", since: "2026-01-01T00:00:00Z" },
      { node: "node-3", since: "2026-01-02T00:00:00Z" },
    ];
    const joined = input({}, [{ node: "node-1", since: "2026-01-01T00:00:00Z" }, ...after]);
    const replaced = input({}, after, "node-1");
    for (const n of ["node-2", "node-3", "node-4"]) {
      assert.deepEqual(roleChanges(conf(two, n), conf(joined, n)), [], `${n}: joining restarts nothing`);
      assert.deepEqual(
        roleChanges(conf(joined, n), conf(replaced, n)),
        [],
        `${n}: a gone reflector restarts nothing`,
      );
    }
    // node-1 stops reflecting while alive: its session with node-2 changes role on both ends
    const demoted = input({}, after);
    assert.equal(roleChanges(conf(joined, "node-1"), conf(demoted, "node-1")).length, 2);
    assert.equal(roleChanges(conf(joined, "node-2"), conf(demoted, "node-2")).length, 1);
  });
});
