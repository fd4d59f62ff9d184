/**
 * Pool choice, fixed addresses, reservations and the exhaustion warning against the real
 * apiserver: real Pod and Namespace objects carrying the weft.dev/ annotations, read by the
 * agent's own reader (KubePodIpam) and assigned by the agent's IPAM (IpamAddressAssigner over the
 * Assigner); the controller's status, GC and Events where they take part.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { register } from "prom-client";
import { AssignmentRefused } from "../../agent/cni/assigner.js";
import { IpamAddressAssigner } from "../../agent/cni/ipam-assigner.js";
import { KubePodIpam } from "../../agent/cni/pod-ipam.js";
import type { IPPoolSpec } from "../../api/index.js";
import { writesTotal } from "../../datastore/metrics.js";
import { waitFor } from "../../devenv/procs.js";
import { Assigner } from "../../ipam/client/assigner.js";
import { parseCidr, parseIP } from "../../net/index.js";
import {
  blocksOf,
  createNode,
  createPool,
  deleteNode,
  ensureNamespace,
  removePools,
  setup,
  startController,
} from "./ipam-support.js";

const { kc, store, core } = setup();
const tag = `ipx${process.pid}`;
const pools: string[] = [];
const nodes: string[] = [];
const reservations: string[] = [];
const mine = (n: string) => n.startsWith(`${tag}-`);
const ns = `${tag}-web`;

let assigner: Assigner;
let agentIpam: IpamAddressAssigner;
const podIpam = new KubePodIpam(kc);

async function pool(suffix: string, spec: IPPoolSpec): Promise<string> {
  const name = `${tag}-${suffix}`;
  pools.push(name);
  await createPool(store, name, { encapsulation: "HostGW", ...spec });
  await waitFor(`pool ${name} in the assigner's cache`, () => (assigner.knowsPool(name) ? true : undefined));
  return name;
}

async function node(suffix: string, labels: Record<string, string> = {}): Promise<string> {
  const name = `${tag}-${suffix}`;
  nodes.push(name);
  await createNode(core, name, labels);
  return name;
}

async function pod(name: string, nodeName: string, annotations: Record<string, string> = {}): Promise<void> {
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name, annotations },
      spec: { nodeName, containers: [{ name: "c", image: "registry.invalid/pause" }] },
    },
  });
}

async function deletePod(name: string): Promise<void> {
  await core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 0 }).catch(() => undefined);
  await waitFor(`pod ${name} gone`, async () => {
    try {
      await core.readNamespacedPod({ namespace: ns, name });
      return undefined;
    } catch {
      return true;
    }
  });
}

/** What the agent does for a pod's sandbox: read its annotations, then assign. */
async function add(
  podName: string,
  nodeName: string,
  sandbox: string,
  families: Array<"ipv4" | "ipv6"> = ["ipv4"],
) {
  const asked = await podIpam.lookup(ns, podName);
  return agentIpam.assign({
    node: nodeName,
    handle: `${sandbox}.eth0`,
    namespace: ns,
    pod: podName,
    families,
    ...(asked ? { ipam: asked.request } : {}),
  });
}

async function refused(p: Promise<unknown>, kind: AssignmentRefused["kind"], ...patterns: RegExp[]) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AssignmentRefused, String(err));
    assert.equal(err.kind, kind, err.message);
    for (const re of patterns) assert.match(err.message, re);
    return true;
  });
}

function inCidr(ip: string, cidr: string): boolean {
  const a = parseIP(ip);
  const c = parseCidr(cidr);
  return (
    a.family === c.family &&
    a.value >= c.base &&
    a.value < c.base + (1n << BigInt((c.family === 4 ? 32 : 128) - c.prefix))
  );
}

async function writes(): Promise<number> {
  return (await writesTotal.get()).values.reduce((s, v) => s + v.value, 0);
}

before(async () => {
  await ensureNamespace(core, ns);
  assigner = new Assigner({ store, kc, poolFilter: mine });
  await assigner.start();
  agentIpam = new IpamAddressAssigner(assigner);
});

after(async () => {
  await assigner?.stop();
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
  await Promise.all(nodes.map((n) => deleteNode(core, n)));
  for (const r of reservations) await store.delete("IPReservation", r).catch(() => undefined);
  await removePools(store, pools);
});

describe("pool choice by annotation", () => {
  it("takes the namespace's pools, the pod's where it names its own, each group in one write", async () => {
    const blue = await pool("blue", { cidr: "10.210.0.0/24" });
    const green = await pool("green", { cidr: "10.210.1.0/24" });
    await pool("plain", { cidr: "10.210.2.0/24" });
    const n = await node("choice");
    await core.patchNamespace(
      { name: ns, body: { metadata: { annotations: { "weft.dev/ipv4pools": JSON.stringify([green]) } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const names = Array.from({ length: 20 }, (_, i) => `choice-${i}`);
    await Promise.all(
      names.map((p, i) => pod(p, n, i % 2 ? { "weft.dev/ipv4pools": JSON.stringify([blue]) } : {})),
    );
    // The annotations are read first, so that the twenty requests reach the IPAM together, as a
    // burst of sandboxes does: requests naming the same pools share one commit.
    const asked = await Promise.all(names.map((p) => podIpam.lookup(ns, p)));
    const w0 = await writes();
    const got = await Promise.all(
      names.map((p, i) =>
        agentIpam.assign({
          node: n,
          handle: `ch${i}.eth0`,
          namespace: ns,
          pod: p,
          families: ["ipv4"],
          ipam: asked[i]!.request,
        }),
      ),
    );
    const w1 = await writes();
    for (const [i, g] of got.entries()) {
      const want = i % 2 ? "10.210.0.0/24" : "10.210.1.0/24";
      assert.ok(inCidr(g.ips[0]!, want), `${names[i]} got ${g.ips[0]}, not from ${want}`);
    }
    assert.equal(w1 - w0, 2, "20 addresses from two pools: one claim write per pool");
    assert.equal((await blocksOf(store, `${tag}-plain`)).length, 0, "the unnamed pool gave nothing");
  });

  it("refuses, naming the pool or the field, and allocates nothing", async () => {
    const off = await pool("off", { cidr: "10.210.3.0/24", disabled: true });
    const zoned = await pool("zoned", {
      cidr: "10.210.4.0/24",
      nodeSelector: { matchLabels: { zone: "b" } },
    });
    const six = await pool("six", { cidr: "fd00:210::/120" });
    const n = await node("refuse", { zone: "a" });
    const cases: Array<[string, Record<string, string>, AssignmentRefused["kind"], RegExp]> = [
      [
        "r-missing",
        { "weft.dev/ipv4pools": `["${tag}-nope"]` },
        "PoolNotUsable",
        new RegExp(`pool ${tag}-nope does not exist`),
      ],
      [
        "r-off",
        { "weft.dev/ipv4pools": `["${off}"]` },
        "PoolNotUsable",
        new RegExp(`pool ${off} is disabled`),
      ],
      [
        "r-zoned",
        { "weft.dev/ipv4pools": `["${zoned}"]` },
        "PoolNotUsable",
        new RegExp(`pool ${zoned} does not give addresses to node ${n}`),
      ],
      [
        "r-six",
        { "weft.dev/ipv4pools": `["${six}"]` },
        "PoolNotUsable",
        new RegExp(`pool ${six} is an IPv6 pool`),
      ],
      [
        "r-json",
        { "weft.dev/ipv4pools": "[oops" },
        "InvalidAnnotation",
        /weft\.dev\/ipv4pools of pod .*\/r-json is not JSON/,
      ],
      [
        "r-v6-in-v4",
        { "weft.dev/ipv4pools": '["fd00:210::5"]' },
        "InvalidAnnotation",
        /is an IPv6 address, not a pool name/,
      ],
      [
        "r-outside",
        { "weft.dev/ip-addresses": '["192.0.2.77"]' },
        "InvalidAnnotation",
        /192\.0\.2\.77 lies outside every IPv4 IPPool/,
      ],
      [
        "r-family",
        { "weft.dev/ip-addresses": '["fd00:210::5"]' },
        "InvalidAnnotation",
        /fd00:210::5 is an IPv6 address, but this network assigns IPv4 only/,
      ],
    ];
    for (const [p, annotations] of cases) await pod(p, n, annotations);
    // the namespace names a pool of the first test; these pods override it or fail before using it
    const w0 = await writes();
    for (const [p, , kind, re] of cases) await refused(add(p, n, `rf-${p}`), kind, re);
    assert.equal(await writes(), w0, "nothing was written for any refused pod");
    for (const name of [off, zoned, six]) assert.equal((await blocksOf(store, name)).length, 0);
  });
});

describe("fixed addresses", () => {
  it("claims the block, names the holder of an address in use, refuses a strict pool's foreign block", async () => {
    await pool("fx", { cidr: "10.210.8.0/24", blockSize: 28 });
    const n1 = await node("fx-1");
    const n2 = await node("fx-2");
    await pod("db-0", n1, { "weft.dev/ip-addresses": '["10.210.8.20"]', "weft.dev/ipv4pools": "[]" });
    // An empty pool list is refused even with a fixed address: the annotation is wrong.
    await refused(add("db-0", n1, "fx0"), "InvalidAnnotation", /empty list/);
    await core.patchNamespacedPod(
      { namespace: ns, name: "db-0", body: { metadata: { annotations: { "weft.dev/ipv4pools": null } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const a = await add("db-0", n1, "fx1");
    assert.deepEqual(a.ips, ["10.210.8.20"]);
    const [blk] = await blocksOf(store, `${tag}-fx`);
    assert.equal(blk?.spec.cidr, "10.210.8.16/28");
    assert.equal(blk?.spec.affinity, n1);
    await pod("db-1", n1, { "weft.dev/ip-addresses": '["10.210.8.20"]' });
    await refused(
      add("db-1", n1, "fx2"),
      "AddressUnavailable",
      new RegExp(`10\\.210\\.8\\.20 is in use by pod ${ns}/db-0 \\(handle fx1\\.eth0, node ${n1}\\)`),
    );
    await pod("db-2", n2, { "weft.dev/ip-addresses": '["10.210.8.21"]' });
    await refused(
      add("db-2", n2, "fx3"),
      "AddressUnavailable",
      new RegExp(
        `block 10\\.210\\.8\\.16/28 of node ${n1}; node ${n2} may not take it: pool ${tag}-fx has strictAffinity: true`,
      ),
    );
  });

  it("a StatefulSet pod keeps its address across restarts, and across a move to another node", async () => {
    // Pools of the tests that run a controller select only their own nodes: the controller claims a
    // block at join for every node a pool selects.
    const sel = { [`${tag}-ss`]: "yes" };
    const lo = await pool("fx-loose", {
      cidr: "10.210.9.0/24",
      blockSize: 28,
      strictAffinity: false,
      nodeSelector: { matchLabels: sel },
    });
    const n1 = await node("ss-1", sel);
    const n2 = await node("ss-2", sel);
    const annotations = { "weft.dev/ip-addresses": '["10.210.9.20"]' };
    await pod("web-0", n1, annotations);
    assert.deepEqual((await add("web-0", n1, "ss1")).ips, ["10.210.9.20"]);
    // Restart on the same node with a release: the same address again.
    await agentIpam.release("ss1.eth0");
    assert.deepEqual((await add("web-0", n1, "ss2")).ips, ["10.210.9.20"]);
    // Restart whose release never came (a crashed runtime): the new sandbox takes over.
    assert.deepEqual((await add("web-0", n1, "ss3")).ips, ["10.210.9.20"]);
    const handles = async () =>
      (await blocksOf(store, lo)).flatMap((b) =>
        b.spec.allocations.map((x) => [x.handle, x.node ?? b.spec.affinity]),
      );
    assert.deepEqual(await handles(), [["ss3.eth0", n1]]);
    // The node dies and the pod comes back on another node under the same name; node 1's agent
    // never released the old sandbox, and node 2 may not touch node 1's allocation itself...
    await deletePod("web-0");
    await pod("web-0", n2, annotations);
    await refused(
      add("web-0", n2, "ss4"),
      "AddressUnavailable",
      new RegExp(`in use by pod ${ns}/web-0 \\(handle ss3\\.eth0, node ${n1}\\)`),
    );
    // ...until the garbage collector sees the address's pod running elsewhere and frees it.
    const ctl = await startController(kc, store, {
      poolFilter: (p) => p === lo,
      gcGraceMs: 500,
      gcIntervalMs: 200,
      statusDelayMs: 100,
    });
    try {
      await waitFor("the GC to free the moved pod's old address", async () =>
        (await handles()).length === 0 ? true : undefined,
      );
    } finally {
      await ctl.stop();
    }
    await waitFor("the assigner to see it", () => (assigner.holding("ss3.eth0") ? undefined : true));
    assert.deepEqual((await add("web-0", n2, "ss4")).ips, ["10.210.9.20"], "borrowed from node 1's block");
    assert.deepEqual(await handles(), [["ss4.eth0", n2]], "the allocation names the borrowing node");
  });
});

describe("reservations and the exhaustion warning", () => {
  it("reserved addresses are skipped, may be asked for by name, and the status names holders and strays", async () => {
    const sel = { [`${tag}-rs`]: "yes" };
    const rs = await pool("rs", {
      cidr: "10.210.16.0/28",
      blockSize: 28,
      nodeSelector: { matchLabels: sel },
    });
    const n = await node("rs", sel);
    const name = `${tag}-res`;
    reservations.push(name);
    await store.create("IPReservation", {
      apiVersion: "weft.dev/v1alpha1",
      kind: "IPReservation",
      metadata: { name },
      spec: { reservedCIDRs: ["10.210.16.0/30", "10.210.16.8", "192.0.2.0/24"] },
    });
    await waitFor("the assigner to see the reservation", () =>
      assigner.reserved().ranges.length >= 3 ? true : undefined,
    );
    const auto = await Promise.all(
      Array.from({ length: 11 }, (_, i) => assigner.assign({ node: n, handle: `rs${i}`, pools: [rs] })),
    );
    const reserved = new Set(["10.210.16.0", "10.210.16.1", "10.210.16.2", "10.210.16.3", "10.210.16.8"]);
    for (const a of auto) assert.ok(!reserved.has(a.ips[0]!), `${a.ips[0]} is reserved`);
    await assert.rejects(
      assigner.assign({ node: n, handle: "rs-more", pools: [rs] }),
      /no free IPv4 address/,
    );
    await pod("fixed-r", n, { "weft.dev/ip-addresses": '["10.210.16.8"]' });
    assert.deepEqual(
      (await add("fixed-r", n, "rsf")).ips,
      ["10.210.16.8"],
      "a reserved address may be named",
    );
    const ctl = await startController(kc, store, {
      poolFilter: (p) => p === rs,
      gcGraceMs: 600_000,
      statusDelayMs: 100,
    });
    try {
      const st = await waitFor("reservation status", async () => {
        const r = await store.get("IPReservation", name);
        return r?.status?.conditions?.some((c) => c.type === "InUse" && c.status === "True")
          ? r.status
          : undefined;
      });
      const ready = st.conditions?.find((c) => c.type === "Ready");
      assert.equal(ready?.status, "False");
      assert.match(
        ready?.message ?? "",
        /spec\.reservedCIDRs\[2\] 192\.0\.2\.0\/24 lies outside every IPPool/,
      );
      assert.equal(st.reservedAddresses, "5");
      assert.deepEqual(
        st.inUse?.map((u) => [u.ip, u.pod]),
        [["10.210.16.8", "fixed-r"]],
      );
    } finally {
      await ctl.stop();
    }
  });

  it("a pool warns before it is full: NearlyExhausted, claims of the last hour, an Event, metrics", async () => {
    const sel = { [`${tag}-ex`]: "yes" };
    const ex = await pool("ex", {
      cidr: "10.210.32.0/27",
      blockSize: 29,
      exhaustionWarning: { usedPercent: 75 },
      nodeSelector: { matchLabels: sel },
    });
    const n = await node("ex", sel);
    // 3 of 4 blocks: 8 + 8 + 1 addresses
    await Promise.all(
      Array.from({ length: 17 }, (_, i) => assigner.assign({ node: n, handle: `ex${i}`, pools: [ex] })),
    );
    const ctl = await startController(kc, store, {
      poolFilter: (p) => p === ex,
      gcGraceMs: 600_000,
      statusDelayMs: 100,
    });
    try {
      const st = await waitFor("pool status", async () => {
        const p = await store.get("IPPool", ex);
        return p?.status?.conditions?.some((c) => c.type === "NearlyExhausted" && c.status === "True")
          ? p.status
          : undefined;
      });
      const cond = st.conditions?.find((c) => c.type === "NearlyExhausted");
      assert.equal(cond?.reason, "BlocksNearlyUsed");
      assert.match(cond?.message ?? "", /3 of 4 blocks \(75%\)/);
      assert.equal(st.blocks?.free, "1");
      assert.equal(st.claims?.blocksLastHour, 3);
      assert.ok(st.blocksExhaustedAt, "a forecast date while blocks are being claimed");
      const ev = await waitFor("a Warning Event on the pool", async () => {
        const list = await core.listNamespacedEvent({
          namespace: "default",
          fieldSelector: `involvedObject.name=${ex}`,
        });
        return list.items.find((e) => e.reason === "PoolNearlyExhausted");
      });
      assert.equal(ev.type, "Warning");
      assert.equal(ev.involvedObject.kind, "IPPool");
      const metrics = await register.getSingleMetricAsString("weft_ipam_pool_blocks_used");
      assert.match(metrics, new RegExp(`weft_ipam_pool_blocks_used\\{pool="${ex}"\\} 3`));
      const perNode = await register.getSingleMetricAsString("weft_ipam_node_addresses_used");
      assert.match(perNode, new RegExp(`weft_ipam_node_addresses_used\\{node="${n}"\\} 17`));
    } finally {
      await ctl.stop();
    }
  });
});
