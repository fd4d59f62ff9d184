import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ANNOTATIONS } from "../../api/index.js";
import { testCluster } from "../../devenv/cluster.js";
import { ClusterNetwork, formatConnectivity, type Mode } from "../../devenv/clusternet.js";
import { startTestEtcd } from "../../devenv/containers/etcd.js";
import type { EtcdServer } from "../../devenv/etcd.js";
import {
  addFlannelPod,
  type Flanneld,
  flanneldSubnet,
  startFlanneld,
  stopFlanneld,
} from "../../devenv/flannel.js";
import { waitFor } from "../../devenv/procs.js";
import { repoRoot } from "../../devenv/tools.js";
import { ip, requireRoot } from "../../devenv/topology.js";

const execFileP = promisify(execFile);

// Issue 15, mixed cluster: three nodes run weft-agent, a fourth runs the real flanneld (v0.26.7,
// built by install-tools.sh) against the same etcd. flanneld reads the config Weft wrote, takes
// a lease; Weft turns that lease into a RouteIntent (PublicIP, VtepMAC) and keeps its hands off
// it. Pods on every node reach pods on every other node, both ways, in vxlan and host-gw; the
// flanneld key stays byte for byte across a controller restart; when flanneld dies and its lease
// goes, every Weft node drops its entries for that subnet.

const PREFIX = "/coreos.com/network";

interface KeyState {
  value: string;
  lease: string;
  modRevision: string;
}

for (const mode of ["vxlan", "host-gw"] as const satisfies readonly Mode[]) {
  describe(`3 Weft nodes and 1 flanneld node in one network (${mode})`, { timeout: 420_000 }, () => {
    requireRoot("the dataplane tests");
    const cp = testCluster().state;
    const id = `wfl${mode === "vxlan" ? "v" : "h"}${process.pid}`;
    const runDir = join(tmpdir(), `weft-${id}`);
    const pool = `${id}-pool`;
    const weftPods = [1, 2, 3].flatMap((i) => [`${id}-p${i}a`, `${id}-p${i}b`]);
    let etcd: EtcdServer | undefined;
    let net: ClusterNetwork | undefined;
    let flanneld: Flanneld | undefined;
    let flannelSubnet = ""; // e.g. 10.x.5.0/24
    let flannelNode = "";

    /** A key under the Flannel prefix as etcd holds it (value, etcd lease, mod revision). */
    async function keyState(key: string): Promise<KeyState | undefined> {
      const raw = await etcd!.etcdctl(["get", key, "-w", "json"]);
      const out = JSON.parse(raw) as { kvs?: Array<{ value: string }> };
      const kv = out.kvs?.[0];
      if (!kv) return undefined;
      // lease ids are int64: read as text, a JSON number would lose digits
      return {
        value: Buffer.from(kv.value, "base64").toString(),
        lease: /"lease":(\d+)/.exec(raw)?.[1] ?? "0",
        modRevision: /"mod_revision":(\d+)/.exec(raw)?.[1] ?? "0",
      };
    }
    const leaseKey = () => `${PREFIX}/subnets/${flannelSubnet.replace("/", "-")}`;
    const runsCount = () =>
      readFileSync(join(runDir, "controller.log"), "utf8").split("controllers running").length - 1;

    before(async () => {
      etcd = await startTestEtcd();
      net = new ClusterNetwork({ id, runDir, cp, datastore: "etcd", etcd });
      await net.createPool(
        net.pool(pool, `10.${100 + (process.pid % 50)}.0.0/16`, mode, {
          allocation: "NodeSubnet",
          blockSize: 24,
        }),
      );
      await net.up(3);
      await net.waitConverged(120_000);
      // The fourth host runs flanneld; its Node registers once flanneld has its lease, as a
      // kubelet would next to a running flanneld (adoption at join).
      flannelNode = net.nodeName(4);
      const node = await net.topo.addNode(flannelNode);
      net.topo.bridgeNode(flannelNode);
      flanneld = startFlanneld(net.topo, node, etcd, runDir, PREFIX);
      const fsub = await flanneldSubnet(flanneld);
      flannelSubnet = `${fsub.replace(/\.\d+\/\d+$/, ".0")}/24`;
      const created = await net.core.createNode({
        body: {
          metadata: { name: flannelNode, labels: { ...net.labels, "kubernetes.io/hostname": flannelNode } },
        },
      });
      await net.core.replaceNodeStatus({
        name: flannelNode,
        body: { ...created, status: { addresses: [{ type: "InternalIP", address: node.underlayIP }] } },
      });
      for (const p of weftPods) await net.addPodViaCni(net.nodeName(Number(p.at(-2))), p);
      await addFlannelPod(net.topo, node, `${id}-p4a`, fsub, 2);
      await addFlannelPod(net.topo, node, `${id}-p4b`, fsub, 3);
    });
    after(async () => {
      try {
        if (net) await net.core.deleteNode({ name: flannelNode }).catch(() => undefined);
        await net?.destroy();
      } finally {
        await etcd?.stop();
        rmSync(runDir, { recursive: true, force: true });
      }
    });

    it("flanneld took a lease in the network Weft leases for, with Flannel's backend", async () => {
      const config = JSON.parse((await keyState(`${PREFIX}/config`))!.value) as {
        Network: string;
        Backend: { Type: string; VNI?: number; Port?: number };
      };
      assert.equal(config.Network, `10.${100 + (process.pid % 50)}.0.0/16`);
      assert.equal(config.Backend.Type, mode);
      const lease = JSON.parse((await keyState(leaseKey()))!.value) as {
        PublicIP: string;
        BackendType: string;
        BackendData?: { VtepMAC?: string };
      };
      assert.equal(lease.PublicIP, net!.topo.nodes.get(flannelNode)!.underlayIP);
      assert.equal(lease.BackendType, mode);
      if (mode === "vxlan") {
        // flanneld made its device with the VNI and port of Weft's config
        const [dev] = JSON.parse(
          await ip(["-n", flanneld!.node.ns, "-d", "-json", "link", "show", "flannel.1"]),
        ) as Array<{
          address: string;
          linkinfo: { info_data: { id: number; port: number } };
        }>;
        assert.equal(dev!.linkinfo.info_data.id, config.Backend.VNI ?? 1);
        assert.equal(dev!.linkinfo.info_data.port, config.Backend.Port ?? 8472);
        assert.equal(lease.BackendData?.VtepMAC, dev!.address);
      }
    });

    it("the flanneld node's lease is a RouteIntent with its PublicIP (and VtepMAC), and its Node kept that subnet", async () => {
      const ri = await waitFor(`a RouteIntent for ${flannelNode}`, async () => {
        const all = (await net!.store.list("RouteIntent")).items;
        return all.find((i) => i.spec.routes.some((r) => r.dst === flannelSubnet));
      });
      assert.equal(ri.spec.underlayIP, net!.topo.nodes.get(flannelNode)!.underlayIP);
      assert.equal(ri.metadata.labels?.[ANNOTATIONS.flannelLease], flannelSubnet.replace("/", "-"));
      if (mode === "vxlan") {
        const lease = JSON.parse((await keyState(leaseKey()))!.value) as { BackendData: { VtepMAC: string } };
        assert.equal(ri.spec.vtep?.mac, lease.BackendData.VtepMAC);
      }
      const blocks = await waitFor(`${flannelNode}'s block`, async () => {
        const b = (await net!.store.list("IPAMBlock")).items.filter((x) => x.spec.affinity === flannelNode);
        return b.length ? b : undefined;
      });
      assert.deepEqual(
        blocks.map((b) => b.spec.cidr),
        [flannelSubnet],
        "the Node that joined keeps flanneld's subnet; Weft claims no second one",
      );
      const leases = (await etcd!.etcdctl(["get", `${PREFIX}/subnets/`, "--prefix", "--keys-only"]))
        .split("\n")
        .filter(Boolean);
      assert.equal(leases.length, 4, `one lease per host: ${leases.join(", ")}`);
      // what a user sees: weftctl tells flanneld's node from Weft's and shows its lease lives
      const { stdout } = await execFileP(
        process.execPath,
        [
          join(repoRoot, "dist", "cli", "main.js"),
          `--kubeconfig=${cp.kubeconfig}`,
          "--datastore=etcd",
          "flannel",
          "status",
          "-o",
          "json",
        ],
        { env: { ...process.env, ...etcd!.env() } },
      );
      const rows = JSON.parse(stdout) as Array<{ subnet: string; node: string; runBy: string; ttl: string }>;
      const row = rows.find((r) => r.subnet === flannelSubnet);
      assert.equal(row?.runBy, "flanneld", stdout);
      assert.equal(row?.node, flannelNode);
      assert.match(row?.ttl ?? "", /^\d+s$/, "its lease is live");
      assert.equal(rows.filter((r) => r.runBy === "weft-agent").length, 3, stdout);
    });

    it("pods on every node reach pods on every other node, both ways", async () => {
      const result = await net!.waitConnectivity(90_000);
      assert.equal(result.total, 8 * 7);
      assert.equal(result.ok, result.total, `${formatConnectivity(result)}\n${net!.logTails()}`);
    });

    it("flanneld's key is byte for byte untouched across a Weft controller restart", async () => {
      const before = await keyState(leaseKey());
      assert.ok(before);
      const runs = runsCount();
      await net!.stopController();
      net!.startController();
      await waitFor(
        "the restarted controller to run its parts",
        () => runsCount() > runs || undefined,
        90_000,
      );
      // a full pass over every lease has run (the Flannel part's start waits for one); one more
      // event-driven pass: a pod address changes a block
      await net!.addPodViaCni(net!.nodeName(1), `${id}-p1c`);
      const result = await net!.waitConnectivity(90_000);
      assert.equal(result.ok, result.total, formatConnectivity(result));
      assert.deepEqual(await keyState(leaseKey()), before);
      const log = readFileSync(join(runDir, "controller.log"), "utf8");
      assert.match(
        log,
        /holding the etcd lease of an earlier run/,
        "Weft knew its own keys after the restart",
      );
      // no etcd leases pile up: Weft's one and flanneld's one
      assert.match(await etcd!.etcdctl(["lease", "list"]), /found 2 leases/);
    });

    if (mode === "vxlan")
      it("flanneld dies and its lease goes: every Weft node removes its entries for that subnet", async () => {
        const state = await keyState(leaseKey());
        assert.ok(state);
        await stopFlanneld(flanneld!);
        // flanneld's etcd lease lives 24 h and has no flag to shorten it: revoking it is what its
        // expiry does in etcd (the key is deleted with the lease)
        await etcd!.etcdctl(["lease", "revoke", BigInt(state.lease).toString(16)]);
        await waitFor(
          "no Weft node to route to the dead flanneld node's subnet",
          async () => {
            for (const i of [1, 2, 3]) {
              const ns = net!.topo.nodes.get(net!.nodeName(i))!.ns;
              const routes = JSON.parse(
                await ip(["-n", ns, "-json", "route", "show", flannelSubnet]),
              ) as unknown[];
              const neigh = await ip(["-n", ns, "neigh", "show", "dev", "flannel.1"]);
              if (routes.length > 0 || neigh.includes(flannelSubnet.replace(/\/24$/, ""))) return undefined;
            }
            return true;
          },
          90_000,
        );
        const all = (await net!.store.list("RouteIntent")).items;
        assert.equal(
          all.some((i) => i.spec.routes.some((r) => r.dst === flannelSubnet)),
          false,
          "its RouteIntent is gone",
        );
      });
  });
}
