import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { API_VERSION } from "../../api/index.js";
import type { ControllerContext, Informers } from "../../controllers/context.js";
import { FlannelLeases } from "../../controllers/flannel/leases.js";
import { ipamAssigner, nodeController } from "../../controllers/ipam/index.js";
import { EtcdStore } from "../../datastore/etcd.js";
import { startTestEtcd } from "../../devenv/containers/etcd.js";
import type { EtcdServer } from "../../devenv/etcd.js";
import { waitFor } from "../../devenv/procs.js";
import { repoRoot } from "../../devenv/tools.js";
import type { Controller } from "../../runtime/controller.js";
import { Informer } from "../../runtime/informer.js";
import { type ListWatch, storeListWatch } from "../../runtime/listwatch.js";

/**
 * Flannel-compatible leases against a real TLS etcd: Flannel's byte layout; leases flanneld holds
 * are its nodes' subnets (each node keeps its subnet, the key stays on flanneld's etcd lease, byte
 * for byte, and becomes a RouteIntent); recovery of Weft's lost keys and of its lost etcd lease.
 * Nodes come from a fixed list (the component only reads them).
 */
const fixture = (f: string) => readFileSync(join(repoRoot, "test", "fixtures", "flannel", f), "utf8");
const FP = `/flannel-${process.pid}/network`;

let etcd: EtcdServer;
let store: EtcdStore;
let leases: FlannelLeases | undefined;
let nodeReconciler: Controller | undefined;
const informers: Array<Informer<never>> = [];

function fixed<T>(description: string, items: T[]): ListWatch<T & { metadata?: { name?: string } }> {
  return {
    description,
    list: async () => ({ items: items as never[], resourceVersion: "1" }),
    watch: () => () => {},
  };
}

const node = (name: string, ip: string): k8s.V1Node => ({
  metadata: { name },
  status: { addresses: [{ type: "InternalIP", address: ip }] },
});

async function context(nodes: k8s.V1Node[]): Promise<ControllerContext> {
  const inf: Informers = {
    nodes: new Informer(fixed("Node", nodes)),
    pods: new Informer(fixed<k8s.V1Pod>("Pod", [])),
    pools: new Informer(storeListWatch(store, "IPPool")),
    blocks: new Informer(storeListWatch(store, "IPAMBlock")),
    intents: new Informer(storeListWatch(store, "RouteIntent")),
    bgpConfigs: new Informer(storeListWatch(store, "BGPConfiguration")),
    bgpPeers: new Informer(storeListWatch(store, "BGPPeer")),
    nodeStatuses: new Informer(storeListWatch(store, "NodeNetworkStatus")),
    reservations: new Informer(storeListWatch(store, "IPReservation")),
  };
  for (const i of Object.values(inf) as Array<Informer<never>>) {
    informers.push(i);
    i.start();
  }
  await Promise.all((Object.values(inf) as Array<Informer<never>>).map((i) => i.waitForSync()));
  return { store, kc: undefined as never, informers: inf };
}

before(async () => {
  etcd = await startTestEtcd();
  store = new EtcdStore({ ...etcd.client, prefix: `/weft-flannel-${process.pid}` });
});

after(async () => {
  await leases?.stop();
  await nodeReconciler?.stop();
  await Promise.all(informers.map((i) => i.stop()));
  store?.close();
  await etcd?.stop();
});

it("leaves flanneld's leases alone (each node keeps its subnet and gets a RouteIntent) and leases new nodes in Flannel's format", async () => {
  // What flanneld left in etcd: node-a's documented lease, node-b's, both on flanneld's own lease.
  const flanneldLease = (await etcd.etcdctl(["lease", "grant", "3600"])).match(
    /lease ([0-9a-f]+) granted/,
  )![1]!;
  const aValue = fixture("subnets-10.5.52.0-24.flanneld.json");
  const bValue = aValue
    .replace("192.168.64.3", "192.168.64.4")
    .replace("c6:d2:32:6f:8f:44", "c6:d2:32:6f:8f:45");
  await etcd.etcdctl(["put", `${FP}/subnets/10.5.52.0-24`, aValue, `--lease=${flanneldLease}`]);
  await etcd.etcdctl(["put", `${FP}/subnets/10.5.7.0-24`, bValue, `--lease=${flanneldLease}`]);
  // A reservation for an unknown node, and a lease for another PublicIP that a Weft node will not get.
  const foreign = aValue.replace("192.168.64.3", "192.168.99.9");
  await etcd.etcdctl(["put", `${FP}/subnets/10.5.99.0-24`, foreign]);

  await store.create("IPPool", {
    apiVersion: API_VERSION,
    kind: "IPPool",
    metadata: { name: "flannel" },
    spec: {
      cidr: "10.5.0.0/16",
      blockSize: 24,
      allocation: "NodeSubnet",
      encapsulation: "VXLAN",
      vxlan: { vni: 1, port: 8472 },
    },
  });
  const ctx = await context([
    node("node-a", "192.168.64.3"),
    node("node-b", "192.168.64.4"),
    node("node-c", "192.168.64.5"),
  ]);
  // As weft-controller starts them: the lease mirror first, then IPAM's node join.
  leases = new FlannelLeases(store.client, ctx, { prefix: FP, renewEveryMs: 200, resyncMs: 500 });
  ctx.flannel = leases;
  await leases.start();
  nodeReconciler = nodeController(ctx, ipamAssigner(ctx));
  nodeReconciler.start();

  const blocks = await waitFor("every node has its block", async () => {
    const items = (await store.list("IPAMBlock")).items;
    return ["node-a", "node-b", "node-c"].every((n) => items.some((b) => b.spec.affinity === n))
      ? items
      : undefined;
  });
  const subnetOf = (n: string) => blocks.filter((b) => b.spec.affinity === n).map((b) => b.spec.cidr);
  assert.deepEqual(subnetOf("node-a"), ["10.5.52.0/24"], "node-a keeps its Flannel subnet");
  assert.deepEqual(subnetOf("node-b"), ["10.5.7.0/24"], "node-b keeps its Flannel subnet");
  const c = subnetOf("node-c");
  assert.equal(c.length, 1);
  assert.ok(!["10.5.52.0/24", "10.5.7.0/24", "10.5.99.0/24"].includes(c[0]!), "node-c got a free subnet");

  await waitFor("node-c's lease", () =>
    etcd.etcdctl(["get", `${FP}/subnets/${c[0]!.replace("/", "-")}`]).then((o) => o || undefined),
  );
  const get = async (key: string) =>
    (await etcd.etcdctl(["get", key, "--print-value-only"])).replace(/\n$/, "");
  assert.equal(await get(`${FP}/config`), fixture("config.json"), "config byte for byte");
  assert.equal(await get(`${FP}/subnets/10.5.52.0-24`), aValue, "flanneld's lease not overwritten");
  assert.equal(await get(`${FP}/subnets/10.5.7.0-24`), bValue);
  assert.equal(await get(`${FP}/subnets/10.5.99.0-24`), foreign, "a lease of another PublicIP stays");
  assert.equal(await get(`${FP}/subnets/${c[0]!.replace("/", "-")}`), fixture("subnets-node-c.weft.json"));

  // Only the Weft node's lease hangs on Weft's 24 h lease; flanneld's stay on flanneld's.
  const ttl = await etcd.etcdctl(["lease", "timetolive", BigInt(leases.lease!).toString(16), "--keys"]);
  assert.match(ttl, /granted with TTL\(86400s\)/);
  assert.match(ttl, new RegExp(c[0]!.replace("/", "-")));
  for (const k of ["10.5.52.0-24", "10.5.7.0-24", "10.5.99.0-24"]) assert.doesNotMatch(ttl, new RegExp(k));
  const theirs = await etcd.etcdctl(["lease", "timetolive", flanneldLease, "--keys"]);
  for (const k of ["10.5.52.0-24", "10.5.7.0-24"]) assert.match(theirs, new RegExp(k));
  assert.equal(leases.status().get("node-c")?.state, "Leased");
  // flanneld's nodes are routed to from their leases: PublicIP and VtepMAC
  const ri = await waitFor("node-a's RouteIntent from its lease", () => store.get("RouteIntent", "node-a"));
  assert.equal(ri.spec.underlayIP, "192.168.64.3");
  assert.equal(ri.spec.vtep?.mac, "c6:d2:32:6f:8f:44");
  assert.deepEqual(
    ri.spec.routes.map((r) => r.dst),
    ["10.5.52.0/24"],
  );
});

it("re-creates a deleted lease key, and everything after the etcd lease itself is lost", async () => {
  const l = leases!;
  const cKey = (await etcd.etcdctl(["get", `${FP}/subnets/`, "--prefix", "--keys-only"]))
    .split("\n")
    .find((k) => k && !/10\.5\.(52|7|99)\.0-24$/.test(k))!;
  await etcd.etcdctl(["del", cKey]);
  await waitFor("deleted key re-created", async () =>
    (await etcd.etcdctl(["get", cKey, "--print-value-only"])).trim() === fixture("subnets-node-c.weft.json")
      ? true
      : undefined,
  );

  const before = l.lease!;
  await etcd.etcdctl(["lease", "revoke", BigInt(before).toString(16)]);
  await waitFor(
    "new etcd lease and keys back",
    async () => {
      if (l.lease === before) return undefined;
      const keys = await etcd.etcdctl(["get", `${FP}/subnets/`, "--prefix", "--keys-only"]);
      return ["10.5.52.0-24", "10.5.7.0-24", cKey].every((k) => keys.includes(k)) ? true : undefined;
    },
    20_000,
  );
  assert.ok(l.stats.regrants >= 1);
  assert.equal(
    (await etcd.etcdctl(["get", cKey, "--print-value-only"])).trim(),
    fixture("subnets-node-c.weft.json"),
  );
});
