/**
 * netlink/ against the kernel: what our encoders send is accepted and reads back through
 * iproute2 as intended; the bulk sender reports each failure at its request; our dump decoders
 * agree with `ip -json`.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Netns, requireRootAndIproute2 } from "../../devenv/kernel-netns.js";
import type { LinkInfo, NeighborInfo, RouteInfo } from "../../netlink/decode.js";

const PROBE = join(fileURLToPath(import.meta.url), "..", "netlink-probe-support.js");

function probe<T>(ns: Netns, cmd: object): T {
  const out = execFileSync("ip", ["netns", "exec", ns.name, process.execPath, PROBE, JSON.stringify(cmd)], {
    encoding: "utf8",
    maxBuffer: 256 << 20,
  });
  const r = JSON.parse(out.trim().split("\n").pop()!) as T & { error?: string };
  if (r.error) throw new Error(r.error);
  return r;
}

interface BulkResult {
  ok: number;
  failedIdx: number[];
  codes: string[];
  sends: number;
  retried: number;
  overflows: number;
}

describe("netlink encoders and bulk sender against the kernel", { concurrency: false }, () => {
  let ns: Netns;
  let peer: Netns;

  before(() => {
    requireRootAndIproute2();
    ns = new Netns("nl");
    peer = new Netns("nlp");
    ns.ip("link", "add", "u0", "type", "veth", "peer", "name", "u1");
    ns.ip("addr", "add", "192.168.77.1/24", "dev", "u0");
    ns.ip("link", "set", "u0", "up");
    ns.ip("link", "set", "u1", "up");
  });

  after(() => {
    ns?.delete();
    peer?.delete();
  });

  it("creates a VXLAN device iproute2 reads back as configured; a second create is EEXIST", () => {
    const r = probe<{ again: string; link: LinkInfo }>(ns, {
      op: "vxlan",
      name: "weft.vxlan",
      local: "192.168.77.1",
      link: "u0",
    });
    assert.equal(r.again, "EEXIST");
    const [l] = ns.json<{ mtu: number; flags: string[]; linkinfo: { info_data: Record<string, unknown> } }>(
      "-d",
      "link",
      "show",
      "weft.vxlan",
    );
    const d = l!.linkinfo.info_data;
    assert.deepEqual([d.id, d.port, d.local, d.learning, d.link], [4096, 4789, "192.168.77.1", false, "u0"]);
    assert.equal(l!.mtu, 1400);
    assert.ok(l!.flags.includes("UP"));
    // and our decoder reads the kernel's IFLA_LINKINFO the same way
    assert.deepEqual(
      { ...r.link.vxlan, ttl: undefined },
      {
        vni: 4096,
        port: 4789,
        local: "192.168.77.1",
        link: ns.json<{ ifindex: number }>("link", "show", "u0")[0]!.ifindex,
        learning: false,
        ttl: undefined,
      },
    );
    assert.ok(ns.ip("addr", "show", "dev", "weft.vxlan").includes("10.244.1.0/32"));
  });

  it("creates a veth pair with its peer in another namespace (VETH_INFO_PEER + IFLA_NET_NS_FD)", () => {
    probe(ns, { op: "veth", name: "weft0123456789a", peer: "eth0", peerNetns: peer.name });
    const [here] = ns.json<{ mtu: number; link_netnsid?: number }>("link", "show", "weft0123456789a");
    const [there] = peer.json<{ mtu: number }>("link", "show", "eth0");
    assert.equal(here!.mtu, 1400);
    assert.equal(there!.mtu, 1400);
    assert.notEqual(here!.link_netnsid, undefined, "the peer lives in another namespace");
  });

  it("bulk: 5,000 routes in packed batches; each failure is reported at its own request", () => {
    const r = probe<BulkResult>(ns, { op: "bulk", n: 5000, badEvery: 1000 });
    assert.deepEqual(r.failedIdx, [999, 1999, 2999, 3999, 4999]);
    // a gateway through a device that does not exist
    assert.equal(r.codes.length, 1);
    assert.match(r.codes[0]!, /^(ENODEV|ENETUNREACH)$/);
    assert.equal(r.ok, 4995);
    assert.equal(ns.json("route", "show", "proto", "87").length, 4995);
    const d = probe<BulkResult>(ns, { op: "bulk", n: 5000, del: true });
    assert.equal(d.ok, 5000, "deletes of absent routes count as done (ESRCH tolerated)");
    assert.equal(ns.json("route", "show", "proto", "87").length, 0);
  });

  it("bulk with one acknowledgement per request counts the same, over many sendmsg calls", () => {
    const r = probe<BulkResult>(ns, { op: "bulk", n: 3000, badEvery: 500, ackEach: true, batch: 700 });
    assert.deepEqual(r.failedIdx, [499, 999, 1499, 1999, 2499, 2999]);
    assert.equal(r.ok, 2994);
    assert.equal(r.sends, 5);
    assert.equal(ns.json("route", "show", "proto", "87").length, 2994);
    probe(ns, { op: "bulk", n: 3000, del: true });
  });

  it("bulk never asks for more acknowledgements per batch than the receive buffer holds", () => {
    // one batch of 30,000 acknowledged requests would overflow SO_RCVBUF (and, with netlink 0.3,
    // abort the process): the sender clamps the batch instead
    const r = probe<BulkResult>(ns, { op: "bulk", n: 30000, ackEach: true, batch: 30000 });
    assert.equal(r.ok, 30000);
    assert.deepEqual(r.failedIdx, []);
    assert.equal(r.overflows, 0);
    assert.ok(r.sends > 1);
    assert.equal(ns.json("route", "show", "proto", "87").length, 30000);
    probe(ns, { op: "bulk", n: 30000, del: true });
  });

  it("neighbors, FDB entries and onlink/blackhole routes: kernel state and our dump decoders agree with ip -json", () => {
    probe(ns, { op: "entries", dev: "weft.vxlan", n: 50 });
    const ipNeigh = ns.json<{ dst: string; lladdr: string; state: string[] }>(
      "neigh",
      "show",
      "dev",
      "weft.vxlan",
    );
    const ipFdb = ns.bridgeJson<{ mac: string; dst?: string; flags: string[]; state: string }>(
      "fdb",
      "show",
      "dev",
      "weft.vxlan",
    );
    const ipRoutes = ns.json<{ dst: string; gateway?: string; flags: string[]; type?: string }>(
      "route",
      "show",
      "proto",
      "87",
    );
    assert.equal(ipNeigh.filter((n) => n.state.includes("PERMANENT")).length, 50);
    assert.equal(
      ipFdb.filter((f) => f.dst && f.flags.includes("self") && f.state === "permanent").length,
      50,
    );
    assert.equal(ipRoutes.filter((r) => r.flags.includes("onlink")).length, 50);
    assert.equal(ipRoutes.filter((r) => r.type === "blackhole").length, 1);

    const ours = probe<{ routes: RouteInfo[]; neighbors: NeighborInfo[]; fdb: NeighborInfo[] }>(ns, {
      op: "dump",
      dev: "weft.vxlan",
    });
    const asIp = (dst: string) => (dst.endsWith("/32") ? dst.slice(0, -3) : dst);
    assert.deepEqual(
      ours.routes
        .filter((r) => r.protocol === 0x57)
        .map((r) => `${asIp(r.dst)} ${r.gateway ?? r.type} ${r.onlink}`)
        .sort(),
      ipRoutes.map((r) => `${r.dst} ${r.gateway ?? 6} ${r.flags.includes("onlink")}`).sort(),
    );
    assert.deepEqual(
      ours.neighbors.map((n) => `${n.ip} ${n.mac} ${n.state === 0x80}`).sort(),
      ipNeigh.map((n) => `${n.dst} ${n.lladdr} ${n.state.includes("PERMANENT")}`).sort(),
    );
    assert.deepEqual(
      ours.fdb.map((f) => `${f.mac} ${f.ip}`).sort(),
      ipFdb
        .filter((f) => f.dst)
        .map((f) => `${f.mac} ${f.dst}`)
        .sort(),
    );
  });
});
