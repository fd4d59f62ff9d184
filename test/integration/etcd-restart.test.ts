import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { API_VERSION, type BGPPeer } from "../../api/index.js";
import { EtcdStore } from "../../datastore/etcd.js";
import { startTestEtcd } from "../../devenv/containers/etcd.js";
import type { EtcdServer } from "../../devenv/etcd.js";
import { sleep, waitFor } from "../../devenv/procs.js";
import { audit } from "../../ipam/audit.js";
import { Assigner } from "../../ipam/client/assigner.js";
import { Informer } from "../../runtime/informer.js";
import { type ListWatch, storeListWatch } from "../../runtime/listwatch.js";
import { allocationsByIp } from "./ipam-support.js";

/**
 * etcd going away and coming back, and etcd forgetting history: watches resume from the last
 * revision seen, a compacted revision turns into a relist, and allocators lose and duplicate
 * nothing across a restart.
 */
let etcd: EtcdServer;
const stores: EtcdStore[] = [];
const informers: Array<Informer<never>> = [];
const prefix = `/weft-restart-${process.pid}`;
const newStore = () => {
  const s = new EtcdStore({ ...etcd.client, prefix });
  stores.push(s);
  return s;
};

before(async () => {
  etcd = await startTestEtcd();
});

after(async () => {
  await Promise.all(informers.map((i) => i.stop()));
  for (const s of stores) s.close();
  await etcd?.stop();
});

const peer = (name: string, port = 179): BGPPeer => ({
  apiVersion: API_VERSION,
  kind: "BGPPeer",
  metadata: { name },
  spec: { peerIP: "127.0.0.1", asNumber: 64512, node: "nowhere", port },
});

function recording(lw: ListWatch<BGPPeer>) {
  const adds = new Map<string, number>();
  const deletes = new Set<string>();
  const inf = new Informer(lw, { backoffInitialMs: 50, backoffMaxMs: 500 });
  inf.on({
    add: (o) => adds.set(o.metadata.name, (adds.get(o.metadata.name) ?? 0) + 1),
    delete: (o) => deletes.add(o.metadata.name),
  });
  informers.push(inf as unknown as Informer<never>);
  return { inf, adds, deletes };
}

it("an informer on etcd resumes its watch after etcd restarts and misses nothing", async () => {
  const store = newStore();
  const { inf, adds } = recording(storeListWatch(store, "BGPPeer"));
  inf.start();
  await inf.waitForSync();
  for (let i = 0; i < 5; i++) await store.create("BGPPeer", peer(`before-${i}`));
  await waitFor("before-4 cached", () => inf.get("before-4"), 10_000);
  const watchesBefore = inf.stats.watches;

  await etcd.kill();
  await sleep(500);
  await etcd.restart();
  // Writes right after the restart: the client retries while the connection comes back.
  for (let i = 0; i < 5; i++) await store.create("BGPPeer", peer(`after-${i}`));
  const last = await store.update("BGPPeer", {
    ...(await store.get("BGPPeer", "before-0"))!,
    spec: { ...peer("x").spec, port: 7 },
  });

  await waitFor(
    "informer caught up",
    () =>
      inf.get("before-0")?.metadata.resourceVersion === last.metadata.resourceVersion && inf.get("after-4")
        ? true
        : undefined,
    30_000,
  );
  assert.ok(inf.stats.watches > watchesBefore, "the watch was re-established");
  assert.equal(inf.stats.expired, 0, "resumed from the last revision, not relisted");
  for (const [name, n] of adds) assert.equal(n, 1, `${name} was added once, not again after the restart`);
  assert.equal(inf.list().length, (await store.list("BGPPeer")).items.length);
});

it("a watch whose revision was compacted away reports EXPIRED and the informer relists", async () => {
  const store = newStore();
  await store.create("BGPPeer", peer("compact-keep"));
  await store.create("BGPPeer", peer("compact-gone"));
  let lists = 0;
  const lw: ListWatch<BGPPeer> = {
    description: "BGPPeer(compacted)",
    list: async () => {
      const snapshot = await store.list("BGPPeer");
      if (lists++ === 0) {
        // History after the snapshot is made and then compacted away before the watch starts.
        await store.create("BGPPeer", peer("compact-new"));
        await store.delete("BGPPeer", "compact-gone");
        await store.compact();
      }
      return snapshot;
    },
    watch: (rv, handler) => store.watch("BGPPeer", rv, handler),
  };
  const { inf, adds, deletes } = recording(lw);
  inf.start();
  await waitFor("relist after EXPIRED", () => (inf.get("compact-new") ? true : undefined), 20_000);
  assert.ok(inf.stats.expired >= 1, "the watch expired");
  assert.ok(lists >= 2, "the informer listed again");
  assert.ok(deletes.has("compact-gone"), "the relist told handlers about the delete");
  assert.equal(inf.get("compact-gone"), undefined);
  assert.equal(adds.get("compact-new"), 1);
});

it("assigners on etcd across an etcd restart: every handle one address, no duplicates, nothing lost", async () => {
  const store = newStore();
  const pool = `restart-${process.pid}`;
  await store.create("IPPool", {
    apiVersion: API_VERSION,
    kind: "IPPool",
    metadata: { name: pool },
    spec: { cidr: "10.203.0.0/16", blockSize: 26 },
  });
  const nodes = ["n0", "n1", "n2", "n3"];
  // Two allocators with their own clients and caches, as the controller and an agent would be.
  const assigners = [0, 1].map(
    () => new Assigner({ store: newStore(), nodeLabels: () => ({}), poolFilter: (n) => n === pool }),
  );
  await Promise.all(assigners.map((a) => a.start()));
  await waitFor("pool cached", () => (assigners.every((a) => a.knowsPool(pool)) ? true : undefined), 10_000);

  const TOTAL = 400;
  const got = new Map<string, string>();
  let failures = 0;
  let next = 0;
  const one = async (i: number) => {
    const handle = `${pool}-h${i}.eth0`;
    const node = nodes[i % nodes.length]!;
    const assigner = assigners[i % 2]!;
    // A caller (CNI) retries with the same handle; assign is idempotent per handle.
    for (let attempt = 0; ; attempt++) {
      try {
        const a = await assigner.assign({ node, handle, family: 4 });
        const prev = got.get(handle);
        assert.ok(prev === undefined || prev === a.ips[0], `${handle} got ${prev} and then ${a.ips[0]}`);
        got.set(handle, a.ips[0]!);
        return;
      } catch (err) {
        failures++;
        if (attempt > 100) throw err;
        await sleep(100);
      }
    }
  };
  const lanes = Array.from({ length: 16 }, async () => {
    for (;;) {
      const i = next++;
      if (i >= TOTAL) return;
      await one(i);
    }
  });
  const chaos = (async () => {
    await waitFor("some assignments", () => (got.size >= 100 ? true : undefined), 30_000, 10);
    await etcd.kill();
    await sleep(1000);
    await etcd.restart();
  })();
  await Promise.all([...lanes, chaos]);
  assert.equal(got.size, TOTAL, "every handle got an address");
  assert.equal(new Set(got.values()).size, TOTAL, "no address was handed out twice");

  const blocks = (await store.list("IPAMBlock")).items.filter((b) => b.spec.pool === pool);
  const stored = allocationsByIp(blocks);
  assert.equal(stored.size, TOTAL, "the blocks hold exactly the handed-out addresses");
  for (const [handle, ip] of got) assert.equal(stored.get(ip), handle);
  const report = audit({ pools: [], blocks, nodeExists: () => true, podExists: () => true });
  assert.deepEqual(report.duplicates, []);
  // The caches converge on what etcd holds: their watches came back.
  for (const a of assigners) {
    await waitFor(
      "cache converged",
      () =>
        blocks.every(
          (b) => a.cache.get(b.metadata.name)?.metadata.resourceVersion === b.metadata.resourceVersion,
        )
          ? true
          : undefined,
      20_000,
    );
  }
  await Promise.all(assigners.map((a) => a.stop()));
  process.stdout.write(`# ${failures} assign calls failed during the restart and were retried\n`);
});
