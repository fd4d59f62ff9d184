import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type IPAMBlock, ownBlocks } from "../../api/ipamblock.js";
import { FINALIZERS } from "../../api/meta.js";
import { writesTotal } from "../../datastore/metrics.js";
import { sleep, waitFor } from "../../devenv/procs.js";
import { Assigner } from "../../ipam/client/assigner.js";
import { isIpamError, isReservedHandle, parseCidr, parseIP, vtepHandle } from "../../ipam/index.js";
import { InformerCache } from "../../runtime/cache.js";
import {
  blocksOf,
  createNode,
  createPod,
  createPool,
  deleteNode,
  ensureNamespace,
  removePools,
  setup,
  startController,
} from "./ipam-support.js";

const { kc, store, core } = setup();
const tag = `ipam${process.pid}`;
const pools: string[] = [];
const nodes: string[] = [];
const pool = (suffix: string) => {
  const name = `${tag}-${suffix}`;
  pools.push(name);
  return name;
};
const node = async (suffix: string, labels: Record<string, string> = {}) => {
  const name = `${tag}-${suffix}`;
  nodes.push(name);
  await createNode(core, name, labels);
  return name;
};
const mine = (n: string) => n.startsWith(`${tag}-`);
const ns = `${tag}-pods`;

async function writes(): Promise<number> {
  return (await writesTotal.get()).values.reduce((s, v) => s + v.value, 0);
}

function inCidr(ip: string, cidr: string): boolean {
  const a = parseIP(ip);
  const c = parseCidr(cidr);
  const size = 1n << BigInt((c.family === 4 ? 32 : 128) - c.prefix);
  return a.family === c.family && a.value >= c.base && a.value < c.base + size;
}

let assigner: Assigner;

before(async () => {
  await ensureNamespace(core, ns);
  assigner = new Assigner({ store, kc, poolFilter: mine });
  await assigner.start();
});

after(async () => {
  await assigner?.stop();
  await Promise.all(nodes.map((n) => deleteNode(core, n)));
  await removePools(store, pools);
});

describe("assignment API", () => {
  it("commits a burst on one node in one write, idempotently, and releases by handle", async () => {
    const p = pool("burst");
    await createPool(store, p, { cidr: "10.201.0.0/20" });
    await waitFor("pool in cache", () => poolKnown(p));
    const n = await node("burst");
    const w0 = await writes();
    const got = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        assigner.assign({ node: n, handle: `b${i}.eth0`, namespace: ns, pod: `b${i}` }),
      ),
    );
    const w1 = await writes();
    assert.equal(new Set(got.map((g) => g.ips[0])).size, 40, "40 distinct addresses");
    for (const g of got) assert.ok(inCidr(g.ips[0]!, "10.201.0.0/20"), g.ips[0]);
    assert.equal(w1 - w0, 1, "40 concurrent assignments on one node are one write (claim + addresses)");
    const again = await assigner.assign({ node: n, handle: "b7.eth0", namespace: ns, pod: "b7" });
    assert.deepEqual(again.ips, got[7]!.ips, "same handle, same address");
    assert.equal(await writes(), w1, "an idempotent repeat writes nothing");
    const [stored] = await blocksOf(store, p);
    assert.equal(stored!.spec.affinity, n);
    assert.equal(stored!.spec.allocations.length, 40);
    const b7 = stored!.spec.allocations.find((a) => a.handle === "b7.eth0")!;
    assert.equal(b7.namespace, ns);
    assert.equal(b7.pod, "b7");
    const freed = await assigner.release("b7.eth0");
    assert.deepEqual(
      freed.map((f) => f.ip),
      got[7]!.ips,
    );
    assert.deepEqual(await assigner.release("b7.eth0"), [], "a second release is a no-op");
    assert.equal((await blocksOf(store, p))[0]!.spec.allocations.length, 39);
    // The pods never existed: release the rest, so the GC of the tests below has only its own work.
    await Promise.all(got.map((_, i) => assigner.release(`b${i}.eth0`)));
    assert.equal((await blocksOf(store, p))[0]!.spec.allocations.length, 0);
  });

  it("names the pool and the node when a pool is exhausted", async () => {
    const p = pool("tiny");
    // 4 blocks of 4 addresses.
    await createPool(store, p, { cidr: "10.201.16.0/28", blockSize: 30 });
    await waitFor("pool in cache", () => poolKnown(p));
    const n = await node("tiny");
    const got = await Promise.all(
      Array.from({ length: 16 }, (_, i) => assigner.assign({ node: n, handle: `t${i}.eth0`, pools: [p] })),
    );
    assert.equal(new Set(got.map((g) => g.ips[0])).size, 16);
    await assert.rejects(assigner.assign({ node: n, handle: "t16.eth0", pools: [p] }), (err: unknown) => {
      assert.ok(isIpamError(err, "Exhausted"), String(err));
      assert.match(err.message, new RegExp(p));
      assert.match(err.message, new RegExp(n));
      return true;
    });
  });

  it("borrows from another node's block only when strictAffinity is false", async () => {
    const strict = pool("strict");
    const loose = pool("loose");
    await createPool(store, strict, { cidr: "10.201.17.0/29", blockSize: 30 });
    await createPool(store, loose, { cidr: "10.201.18.0/29", blockSize: 30, strictAffinity: false });
    await waitFor("pools in cache", () => (poolKnown(strict) && poolKnown(loose) ? true : undefined));
    const a = await node("aff-a");
    const b = await node("aff-b");
    for (const p of [strict, loose]) {
      // Node a takes both blocks: 4 + 1 addresses.
      for (let i = 0; i < 5; i++) await assigner.assign({ node: a, handle: `${p}-a${i}`, pools: [p] });
    }
    await assert.rejects(assigner.assign({ node: b, handle: "s-b0", pools: [strict] }), (err: unknown) => {
      assert.ok(isIpamError(err, "Exhausted"), String(err));
      assert.match(err.message, new RegExp(strict));
      assert.match(err.message, new RegExp(b));
      assert.match(err.message, /strictAffinity/);
      return true;
    });
    const borrowed = await assigner.assign({ node: b, handle: "l-b0", pools: [loose] });
    const blocks = await blocksOf(store, loose);
    const holder = blocks.find((x) => x.spec.allocations.some((al) => al.handle === "l-b0"))!;
    assert.equal(holder.spec.affinity, a, "the address comes from node a's block");
    assert.ok(inCidr(borrowed.ips[0]!, holder.spec.cidr));
  });

  it("assigns from an agent's cache of its own blocks: claims past others' blocks and borrows", async () => {
    const p = pool("own");
    const loose = pool("own-loose");
    await createPool(store, p, { cidr: "10.201.19.0/28", blockSize: 30 });
    await createPool(store, loose, { cidr: "10.201.20.0/29", blockSize: 30, strictAffinity: false });
    await waitFor("pools in cache", () => (poolKnown(p) && poolKnown(loose) ? true : undefined));
    const other = await node("own-other");
    const a = await node("own-a");
    // The other node holds the first blocks of both pools; node a's cache never sees them.
    for (let i = 0; i < 2; i++) await assigner.assign({ node: other, handle: `o${i}`, pools: [p] });
    // 6 of the 8 addresses: both blocks claimed, two addresses left to borrow
    for (let i = 0; i < 6; i++) await assigner.assign({ node: other, handle: `ol${i}`, pools: [loose] });
    const agentCache = new InformerCache(store, kc, { selections: { IPAMBlock: ownBlocks(a) } });
    const agent = new Assigner({
      store,
      kc,
      poolFilter: mine,
      blocks: agentCache.kind("IPAMBlock"),
      pools: agentCache.kind("IPPool"),
      ownBlocksOnly: agentCache.partial("IPAMBlock"),
    });
    agentCache.start();
    try {
      await agent.start();
      assert.equal(agent.cache.size, 0, "no block of another node in the agent's cache");
      const got = await agent.assign({ node: a, handle: "own0", pools: [p] });
      assert.equal(agent.stats.lostClaims, 0, "no claim of a block another node holds");
      const held = (await blocksOf(store, p)).find((x) =>
        x.spec.allocations.some((al) => al.handle === "own0"),
      )!;
      assert.equal(held.spec.affinity, a);
      assert.ok(inCidr(got.ips[0]!, held.spec.cidr));
      // The loose pool is all the other node's: one address is borrowed from it.
      await agent.assign({ node: a, handle: "own-l0", pools: [loose] });
      const lent = (await blocksOf(store, loose)).find((x) =>
        x.spec.allocations.some((al) => al.handle === "own-l0"),
      );
      assert.equal(lent?.spec.affinity, other, "borrowed from the other node's block");
    } finally {
      await agent.stop();
      await agentCache.stop();
    }
  });

  it("gives a dual-stack pod one IPv4 and one IPv6 address from a /64 pool with /122 blocks", async () => {
    const v4 = pool("ds4");
    const v6 = pool("ds6");
    await createPool(store, v4, { cidr: "10.201.32.0/24", nodeSelector: { matchLabels: { [tag]: "ds" } } });
    await createPool(store, v6, {
      cidr: "fd00:201:0:1::/64",
      blockSize: 122,
      nodeSelector: { matchLabels: { [tag]: "ds" } },
    });
    await waitFor("pools in cache", () => (poolKnown(v4) && poolKnown(v6) ? true : undefined));
    const n = await node("ds", { [tag]: "ds" });
    const got = await assigner.assign({
      node: n,
      handle: "ds0.eth0",
      namespace: ns,
      pod: "ds0",
      families: [4, 6],
      pools: [v4, v6],
    });
    assert.equal(got.ips.length, 2);
    assert.ok(inCidr(got.ips[0]!, "10.201.32.0/24"), got.ips[0]);
    assert.ok(inCidr(got.ips[1]!, "fd00:201:0:1::/64"), got.ips[1]);
    const [b6] = await blocksOf(store, v6);
    assert.match(b6!.spec.cidr, /\/122$/);
    assert.equal(b6!.spec.affinity, n);
    const again = await assigner.assign({
      node: n,
      handle: "ds0.eth0",
      families: ["ipv4", "ipv6"],
      pools: [v4, v6],
    });
    assert.deepEqual(again.ips, got.ips);
    const v6only = await assigner.assign({ node: n, handle: "ds1.eth0", family: 6, pools: [v6] });
    assert.ok(inCidr(v6only.ips[0]!, b6!.spec.cidr));
  });
});

function poolKnown(name: string): true | undefined {
  return assigner.knowsPool(name) ? true : undefined;
}

describe("IPAM controller", () => {
  it("claims blocks and the VTEP at node join, and on node deletion frees empty blocks but keeps used ones", async () => {
    const sub = pool("subnet");
    const blk = pool("blocks");
    const label = `${tag}-join`;
    await createPool(store, sub, {
      cidr: "10.201.64.0/20",
      blockSize: 24,
      allocation: "NodeSubnet",
      nodeSelector: { matchLabels: { [label]: "subnet" } },
    });
    await createPool(store, blk, {
      cidr: "10.201.80.0/20",
      nodeSelector: { matchLabels: { [label]: "blocks" } },
    });
    const ctl = await startController(kc, store, { poolFilter: mine, gcGraceMs: 1000, statusDelayMs: 100 });
    try {
      // idle: a Flannel-style node subnet; busy: a Calico-style block. Both VXLAN, so both get a VTEP.
      const idle = await node("join-idle", { [label]: "subnet" });
      const busy = await node("join-busy", { [label]: "blocks" });
      for (const [n, p, size] of [
        [idle, sub, "/24"],
        [busy, blk, "/26"],
      ] as const) {
        const own = await waitFor(`blocks of ${n}`, async () => {
          // Other test files' controllers may serve other pools to every node: look at ours only.
          const bs = (await store.list("IPAMBlock")).items.filter(
            (b) => b.spec.affinity === n && (b.spec.pool === sub || b.spec.pool === blk),
          );
          const vtep = bs.some((b) => b.spec.allocations.some((a) => a.handle === vtepHandle(n)));
          return bs.length > 0 && vtep ? bs : undefined;
        });
        assert.equal(own.length, 1, "exactly one block at join");
        assert.equal(own[0]!.spec.pool, p);
        assert.ok(own[0]!.spec.cidr.endsWith(size), own[0]!.spec.cidr);
        assert.deepEqual(
          own[0]!.spec.allocations.map((a) => a.handle),
          [vtepHandle(n)],
          "the VTEP address is reserved in the node's first VXLAN block, in the same write as the claim",
        );
      }
      // The pod on `busy` is alive (its Pod exists), so GC must keep it and the block must stay.
      await createPod(core, ns, "live0");
      await waitFor("pool in cache", () => poolKnown(blk));
      const a = await assigner.assign({
        node: busy,
        handle: "live0.eth0",
        namespace: ns,
        pod: "live0",
        pools: [blk],
      });
      await deleteNode(core, idle);
      await deleteNode(core, busy);
      await waitFor("idle node's blocks released", async () => {
        const bs = (await store.list("IPAMBlock")).items.filter(
          (b) => b.spec.affinity === idle && mine(b.spec.pool),
        );
        return bs.length === 0 ? true : undefined;
      });
      const kept = await waitFor("busy node's VTEP released and empty block deleted", async () => {
        const bs = (await store.list("IPAMBlock")).items.filter(
          (b) => b.spec.affinity === busy && mine(b.spec.pool),
        );
        const vtep = bs.some((b) => b.spec.allocations.some((x) => x.handle === vtepHandle(busy)));
        return bs.length === 1 && !vtep ? bs : undefined;
      });
      assert.equal(kept[0]!.spec.pool, blk);
      assert.deepEqual(
        kept[0]!.spec.allocations.map((x) => x.handle),
        ["live0.eth0"],
      );
      await sleep(2500); // more than the grace period: the live pod's address must survive GC
      const still = (await store.list("IPAMBlock")).items.find(
        (b) => b.metadata.name === kept[0]!.metadata.name,
      );
      assert.ok(
        still?.spec.allocations.some((x) => x.handle === "live0.eth0"),
        `${a.ips[0]} must not be freed`,
      );
      // Once the pod is gone, GC frees the address and the node reconciler the now empty block.
      await core.deleteNamespacedPod({ namespace: ns, name: "live0", gracePeriodSeconds: 0 });
      await waitFor(
        "block of the deleted node released after its last pod went",
        async () => ((await store.get("IPAMBlock", kept[0]!.metadata.name)) ? undefined : true),
        // GC grace, two sightings, then the node reconciler: seconds, but the 2-core machine may
        // be running three suites at once
        90000,
      );
    } finally {
      await ctl.stop();
    }
  });

  it("frees every leaked address of a block in one write and keeps the live pod's", async () => {
    const p = pool("gc-batch");
    await createPool(store, p, { cidr: "10.201.112.0/24" });
    const n = await node("gc-batch");
    await createPod(core, ns, "gl0");
    await waitFor("pool in cache", () => poolKnown(p));
    // 30 addresses whose pods never existed (a SIGKILLed runtime, say) beside one live pod's.
    const leaked = Array.from({ length: 30 }, (_, i) => `gcb${i}`);
    await Promise.all(
      [...leaked, "gl0"].map((pod) =>
        assigner.assign({ node: n, handle: `${pod}.eth0`, namespace: ns, pod, pools: [p] }),
      ),
    );
    const [blk, ...more] = await blocksOf(store, p);
    assert.equal(more.length, 0, "31 addresses fit one /26");
    const name = blk!.metadata.name;
    const podHandles = (b: IPAMBlock) =>
      b.spec.allocations.filter((x) => !isReservedHandle(x.handle)).map((x) => x.handle);
    assert.equal(podHandles(blk!).length, 31);
    // Every write of the block reaches this watch, so a release done address by address shows.
    const seenCounts: number[] = [];
    let closed = false;
    const stop = store.watch("IPAMBlock", blk!.metadata.resourceVersion, (ev) => {
      if (ev.type === "CLOSED" || ev.type === "EXPIRED") closed = true;
      else if (ev.type !== "BOOKMARK" && ev.object.metadata.name === name)
        seenCounts.push(podHandles(ev.object).length);
    });
    const ctl = await startController(kc, store, { poolFilter: mine, gcGraceMs: 1000, statusDelayMs: 100 });
    try {
      const freed = await waitFor("leaked addresses freed", async () => {
        const b = await store.get("IPAMBlock", name);
        return b && podHandles(b).length === 1 ? b : undefined;
      });
      assert.deepEqual(podHandles(freed), ["gl0.eth0"], "the live pod's address stays");
      await waitFor("the watch saw the release", () => (seenCounts.includes(1) || closed ? true : undefined));
      assert.ok(!closed, "the watch ended early, so it cannot tell how many writes the release took");
      assert.deepEqual(
        seenCounts.filter((c) => c !== 31),
        seenCounts.filter((c) => c === 1),
        `the 30 leaked addresses left in one write; pod addresses per write: ${seenCounts.join(", ")}`,
      );
    } finally {
      stop();
      await ctl.stop();
    }
  });

  it("writes pool status and conditions, marks the newer of two overlapping pools, drains with a finalizer", async () => {
    const p = pool("status");
    const over = pool("status-over");
    const dis = pool("status-disabled");
    await createPool(store, p, { cidr: "10.201.96.0/24", blockSize: 26 });
    const ctl = await startController(kc, store, { poolFilter: mine, gcGraceMs: 60_000, statusDelayMs: 100 });
    try {
      const n = await node("status");
      await waitFor("pool in cache", () => poolKnown(p));
      const a = await assigner.assign({ node: n, handle: "st0.eth0", namespace: ns, pod: "st0", pools: [p] });
      await createPod(core, ns, "st0");
      const st = await waitFor("pool status", async () => {
        const x = await store.get("IPPool", p);
        return x?.status?.addresses?.used === 1 && x.metadata.finalizers?.includes(FINALIZERS.pool)
          ? x
          : undefined;
      });
      assert.equal(st.status!.blocks!.total, "4");
      assert.equal(st.status!.addresses!.free, String(256 - 1));
      const cond = (t: string) => st.status!.conditions!.find((c) => c.type === t)!;
      assert.equal(cond("Ready").status, "True");
      assert.equal(cond("Overlapping").status, "False");
      assert.equal(cond("Exhausted").status, "False");
      for (const c of st.status!.conditions!) assert.equal(c.observedGeneration, st.metadata.generation);

      await sleep(1100); // creation timestamps have one-second resolution; the newer pool must be newer
      await createPool(store, over, { cidr: "10.201.96.128/25", blockSize: 26 });
      await waitFor("pool in cache", () => poolKnown(over));
      const ov = await waitFor("Overlapping condition", async () => {
        const x = await store.get("IPPool", over);
        const c = x?.status?.conditions?.find((y) => y.type === "Overlapping");
        return c?.status === "True" ? x : undefined;
      });
      const c = ov.status!.conditions!.find((y) => y.type === "Overlapping")!;
      assert.match(c.message, new RegExp(p), "the condition names the other pool");
      assert.equal(ov.status!.conditions!.find((y) => y.type === "Ready")!.status, "False");
      await assert.rejects(
        assigner.assign({ node: n, handle: "ov0", pools: [over] }),
        /no enabled IPv4 pool|NoMatchingPool|pool/,
      );

      await createPool(store, dis, { cidr: "10.201.97.0/24", disabled: true });
      await waitFor("pool in cache", () => poolKnown(dis));
      await assert.rejects(assigner.assign({ node: n, handle: "dis0", pools: [dis] }), /disabled/);

      // Deleting a pool with a live allocation: the finalizer keeps it until the address is gone.
      await store.delete("IPPool", p);
      await waitFor("the assigner to see the pool marked for deletion", () =>
        assigner.seesPoolDeleting(p) ? true : undefined,
      );
      const draining = await store.get("IPPool", p);
      assert.ok(draining?.metadata.deletionTimestamp, "pool is marked for deletion");
      assert.ok(draining.metadata.finalizers?.includes(FINALIZERS.pool), "and kept by the finalizer");
      await assert.rejects(assigner.assign({ node: n, handle: "st1.eth0", pools: [p] }), /pool/);
      await assigner.release("st0.eth0");
      assert.ok(a.ips[0]);
      await waitFor(
        "drained pool deleted",
        async () => ((await store.get("IPPool", p)) ? undefined : true),
        30000,
      );
      assert.equal((await blocksOf(store, p)).length, 0, "its blocks are gone with it");
    } finally {
      await ctl.stop();
    }
  });
});
