/**
 * Least privilege, with real credentials: TokenRequest tokens of the chart's ServiceAccounts (the
 * agent's bound to a Node, which gives it the node-name claim), against the RBAC and the
 * ValidatingAdmissionPolicy the chart installs. Impersonation with the same extra is checked too,
 * as the policy must not care how the claim arrived.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { blockName } from "../../api/ipamblock.js";
import { testCluster } from "../../devenv/cluster.js";
import { kubectl, tokenKubeconfig } from "../../devenv/controlplane.js";
import { waitFor } from "../../devenv/procs.js";
import { repoRoot } from "../../devenv/tools.js";
import { normalizeRules, parseCanIList } from "../ship/canilist-support.js";
import { HelmCluster, isolatedPool, uniqueRelease } from "./helm-support.js";

const cluster = testCluster();
const hc = new HelmCluster(cluster);
const { release, namespace } = uniqueRelease("rbac");
const otherNamespace = `${namespace}-other`;
const tag = `${process.pid.toString(36)}`;
const nodeA = `weft-rbac-${tag}-a`;
const nodeB = `weft-rbac-${tag}-b`;
const agentSA = `${release}-weft-agent`;
const controllerSA = `${release}-weft-controller`;
const pool = `pool-${release}`;

// a /24 of 100.64.0.0/10 (shared address space) per process, cut into /26 blocks
const net = `100.${64 + (process.pid % 64)}.${Math.floor(process.pid / 64) % 256}`;
const cidrA = `${net}.0/26`;
const cidrA2 = `${net}.64/26`;
const cidrB = `${net}.128/26`;
// node B's block in a pool that allows borrowing (strictAffinity: false)
const loosePool = `loose-${release}`;
const cidrLoose = `${net}.192/28`;

const FIXTURES = join(repoRoot, "test", "fixtures", "rbac");

interface Result {
  ok: boolean;
  /** stdout, then stderr when the command failed */
  out: string;
  stdout: string;
}

let agentA = "";
let agentUnbound = "";
let controller = "";

/** kubectl with a given kubeconfig; failures are results, not exceptions. */
async function as(kubeconfig: string, args: string[], input?: string): Promise<Result> {
  try {
    const stdout = await kubectl(kubeconfig, args, input);
    return { ok: true, out: stdout, stdout };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, out: `${e.stdout ?? ""}${e.stderr ?? e.message}`, stdout: e.stdout ?? "" };
  }
}

function block(cidr: string, node: string, sequence = 0, inPool = pool, allocations: object[] = []): string {
  return JSON.stringify({
    apiVersion: "weft.dev/v1alpha1",
    kind: "IPAMBlock",
    metadata: { name: blockName(cidr) },
    spec: { cidr, pool: inPool, affinity: node, sequence, allocations },
  });
}

/** An allocation as the Assigner writes it; `node` marks a borrow. */
function allocation(ordinal: number, handle: string, sequence: number, node?: string) {
  return { ordinal, handle, namespace: "web", pod: `p-${ordinal}`, sequence, ...(node ? { node } : {}) };
}

function nodeStatus(node: string): string {
  return JSON.stringify({
    apiVersion: "weft.dev/v1alpha1",
    kind: "NodeNetworkStatus",
    metadata: { name: node },
    spec: { node },
  });
}

/** The agent's write of a block: read it, change it, PUT it back with the resourceVersion read. */
async function replaceBlock(kc: string, cidr: string, change: (spec: Record<string, unknown>) => void) {
  const got = await as(kc, ["get", "ipamblock", blockName(cidr), "-o", "json"]);
  if (!got.ok) return got;
  const obj = JSON.parse(got.stdout) as { spec: Record<string, unknown> };
  change(obj.spec);
  return as(kc, ["replace", "-f", "-"], JSON.stringify(obj));
}

/** Server-side apply, as the Store does it (forced, under the component's field manager). */
function serverSideApply(kc: string, manager: string, body: object, subresource?: "status") {
  const args = ["apply", "--server-side", "--force-conflicts", `--field-manager=${manager}`, "-f", "-"];
  return as(kc, subresource ? [...args, `--subresource=${subresource}`] : args, JSON.stringify(body));
}

function statusOf(node: string): object {
  return {
    apiVersion: "weft.dev/v1alpha1",
    kind: "NodeNetworkStatus",
    metadata: { name: node },
    status: { lastSyncTime: "2026-01-01T00:00:00Z" },
  };
}

function allowed(r: Result, what: string): void {
  assert.ok(r.ok, `${what} should be allowed: ${r.out}`);
}

function denied(r: Result, what: string, why: RegExp): void {
  assert.ok(!r.ok, `${what} should be refused but succeeded: ${r.out}`);
  assert.match(r.out, /Forbidden|forbidden/, `${what}: ${r.out}`);
  assert.match(r.out, why, `${what}: ${r.out}`);
}

const NOT_OWN = /may not change .* which belongs to node|only for its own node/;
const NO_RBAC = /cannot (create|update|patch|delete|get|list) resource/;

async function token(sa: string, extra: string[] = []): Promise<string> {
  const t = (
    await cluster.kubectl(["create", "token", sa, "-n", namespace, "--duration=1h", ...extra])
  ).trim();
  return hc.kubeconfigFile(
    `${sa}-${extra.length ? "bound" : "plain"}`,
    tokenKubeconfig(cluster.state, t, sa),
  );
}

describe("least privilege with real credentials", () => {
  before(async () => {
    await hc.mustInstall(release, namespace, isolatedPool(release, "100.64.0.0/10"));
    for (const n of [nodeA, nodeB])
      await cluster.kubectl(
        ["create", "-f", "-"],
        JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: n } }),
      );
    await cluster.kubectl(["create", "namespace", otherNamespace]);
    for (const ns of [namespace, otherNamespace])
      await cluster.kubectl([
        "create",
        "secret",
        "generic",
        "bgp-password",
        "-n",
        ns,
        "--from-literal=password=p",
      ]);
    // objects of node B, written by an administrator
    await cluster.kubectl(["create", "-f", "-"], block(cidrB, nodeB));
    await cluster.kubectl(
      ["create", "-f", "-"],
      JSON.stringify({
        apiVersion: "weft.dev/v1alpha1",
        kind: "IPPool",
        metadata: { name: loosePool },
        spec: {
          cidr: `${net}.192/26`,
          blockSize: 28,
          strictAffinity: false,
          disabled: true,
          nodeSelector: { matchLabels: { "weft-test/release": release } },
        },
      }),
    );
    await cluster.kubectl(
      ["create", "-f", "-"],
      block(cidrLoose, nodeB, 1, loosePool, [allocation(0, "b0.eth0", 0)]),
    );
    await cluster.kubectl(["create", "-f", "-"], nodeStatus(nodeB));
    agentA = await token(agentSA, ["--bound-object-kind=Node", `--bound-object-name=${nodeA}`]);
    agentUnbound = await token(agentSA);
    controller = await token(controllerSA);
    // The apiserver takes up new bindings and admission policies through its own watches: until
    // both act, a refusal could come from the missing binding or a write could get through.
    await waitFor(
      "the chart's RBAC and admission policy in effect",
      async () => {
        const r = await as(agentA, ["create", "--dry-run=server", "-f", "-"], block(cidrA2, nodeB));
        return !r.ok && NOT_OWN.test(r.out) ? true : undefined;
      },
      30_000,
      250,
    );
  });

  after(async () => {
    const del = (args: string[]) =>
      cluster.kubectl(["delete", "--ignore-not-found", "--wait=false", ...args]).catch(() => "");
    await del(["ipamblock", blockName(cidrA), blockName(cidrA2), blockName(cidrB), blockName(cidrLoose)]);
    await del(["ippool", loosePool]);
    await del(["nodenetworkstatus", nodeA, nodeB]);
    await del(["routeintent", nodeA, nodeB]);
    await del(["bgppeer", `rbac-${tag}`]);
    await del(["secret", "bgp-password", "-n", otherNamespace]);
    await del(["node", nodeA, nodeB]);
    await hc.uninstall(release, namespace);
    hc.cleanup();
  });

  test("the agent's token carries its node", async () => {
    const who = JSON.parse((await as(agentA, ["auth", "whoami", "-o", "json"])).out);
    assert.equal(who.status.userInfo.username, `system:serviceaccount:${namespace}:${agentSA}`);
    assert.deepEqual(who.status.userInfo.extra["authentication.kubernetes.io/node-name"], [nodeA]);
  });

  test("node A's agent writes its own blocks and status", async () => {
    allowed(await as(agentA, ["create", "-f", "-"], block(cidrA, nodeA)), "create own block");
    allowed(
      await replaceBlock(agentA, cidrA, (spec) => {
        spec.sequence = 1;
      }),
      "update own block",
    );
    allowed(
      await serverSideApply(agentA, "weft-agent", JSON.parse(nodeStatus(nodeA))),
      "apply own NodeNetworkStatus",
    );
    allowed(await serverSideApply(agentA, "weft-agent", statusOf(nodeA), "status"), "apply own status");
    allowed(await as(agentA, ["get", "routeintents,ippools,bgppeers,bgpconfigurations,ipamblocks"]), "read");
    allowed(await as(agentA, ["get", "nodes"]), "read nodes");
  });

  test("node A's agent cannot touch node B's block or status, nor claim them", async () => {
    denied(await as(agentA, ["create", "-f", "-"], block(cidrA2, nodeB)), "create a block for B", NOT_OWN);
    const changeB = (change: (spec: Record<string, unknown>) => void) => replaceBlock(agentA, cidrB, change);
    denied(
      await changeB((spec) => {
        spec.sequence = 5;
      }),
      "update B's block",
      NOT_OWN,
    );
    denied(
      await changeB((spec) => {
        spec.affinity = nodeA;
      }),
      "re-point B's block to A",
      NOT_OWN,
    );
    denied(
      await replaceBlock(agentA, cidrA, (spec) => {
        spec.affinity = nodeB;
      }),
      "hand its own block to B",
      NOT_OWN,
    );
    denied(await as(agentA, ["delete", "ipamblock", blockName(cidrB)]), "delete B's block", NO_RBAC);
    denied(
      await as(agentA, ["create", "-f", "-"], nodeStatus(nodeB)),
      "create B's NodeNetworkStatus",
      NOT_OWN,
    );
    denied(
      await serverSideApply(agentA, "weft-agent", statusOf(nodeB), "status"),
      "apply B's status",
      NOT_OWN,
    );
    const labelled = { ...JSON.parse(nodeStatus(nodeB)), metadata: { name: nodeB, labels: { x: "y" } } };
    denied(await serverSideApply(agentA, "weft-agent", labelled), "label B's NodeNetworkStatus", NOT_OWN);
  });

  test("the agent cannot write RouteIntents, pools, peers or the BGP configuration", async () => {
    const intent = (node: string) =>
      JSON.stringify({
        apiVersion: "weft.dev/v1alpha1",
        kind: "RouteIntent",
        metadata: { name: node },
        spec: { node, underlayIP: "192.0.2.10", encapsulation: "HostGW", routes: [], neighbors: [], fdb: [] },
      });
    await cluster.kubectl(["create", "-f", "-"], intent(nodeB));
    denied(await as(agentA, ["create", "-f", "-"], intent(nodeA)), "create its own RouteIntent", NO_RBAC);
    denied(
      await as(agentA, [
        "patch",
        "routeintent",
        nodeB,
        "--type=merge",
        "-p",
        '{"spec":{"underlayIP":"192.0.2.66"}}',
      ]),
      "change B's RouteIntent",
      NO_RBAC,
    );
    denied(
      await as(agentA, ["patch", "ippool", pool, "--type=merge", "-p", '{"spec":{"disabled":false}}']),
      "enable a pool",
      NO_RBAC,
    );
    const peer = JSON.stringify({
      apiVersion: "weft.dev/v1alpha1",
      kind: "BGPPeer",
      metadata: { name: `rbac-${tag}` },
      spec: { peerIP: "192.0.2.1", asNumber: 64513 },
    });
    denied(await as(agentA, ["create", "-f", "-"], peer), "create a BGPPeer", NO_RBAC);
    await cluster.kubectl(["create", "-f", "-"], peer);
    denied(
      await as(agentA, [
        "patch",
        "bgppeer",
        `rbac-${tag}`,
        "--type=merge",
        "-p",
        '{"spec":{"asNumber":64999}}',
      ]),
      "change a BGPPeer",
      NO_RBAC,
    );
    const cfg = JSON.stringify({
      apiVersion: "weft.dev/v1alpha1",
      kind: "BGPConfiguration",
      metadata: { name: "default" },
      spec: {},
    });
    denied(await as(agentA, ["create", "-f", "-"], cfg), "create the BGPConfiguration", NO_RBAC);
  });

  test("borrowing: node A's agent adds and removes its own allocations in B's block of a loose pool, nothing else", async () => {
    const BORROW_ONLY = /may only add or remove allocations carrying node/;
    const inLoose = (change: (spec: Record<string, unknown>) => void) =>
      replaceBlock(agentA, cidrLoose, change);
    const allocs = (spec: Record<string, unknown>) => spec.allocations as Array<Record<string, unknown>>;
    // as assignInBlock does: the block's next sequence number goes into the new allocation
    const borrow = (spec: Record<string, unknown>) => {
      const seq = (spec.sequence as number) + 1;
      allocs(spec).push(allocation(1, "a1.eth0", seq, nodeA));
      spec.sequence = seq;
    };
    allowed(await inLoose(borrow), "borrow an address of B's block in a loose pool");
    denied(
      await replaceBlock(agentA, cidrB, borrow),
      "borrow from a strict pool's block",
      /does not allow borrowing/,
    );
    const add = (node?: string) => (spec: Record<string, unknown>) => {
      const seq = (spec.sequence as number) + 1;
      allocs(spec).push(allocation(2, "a2.eth0", seq, node));
      spec.sequence = seq;
    };
    denied(await inLoose(add()), "add an allocation without its node name", BORROW_ONLY);
    denied(await inLoose(add(nodeB)), "add an allocation in B's name", BORROW_ONLY);
    denied(
      await inLoose((spec) => {
        add(nodeA)(spec);
        spec.sequence = (spec.sequence as number) + 5;
      }),
      "borrow and push the sequence on",
      BORROW_ONLY,
    );
    denied(
      await inLoose((spec) => {
        spec.sequence = (spec.sequence as number) + 1;
      }),
      "only raise B's block's sequence",
      BORROW_ONLY,
    );
    denied(
      await inLoose((spec) => {
        allocs(spec).splice(0, 1);
      }),
      "free B's own pod's address",
      BORROW_ONLY,
    );
    denied(
      await inLoose((spec) => {
        allocs(spec)[0]!.handle = "stolen.eth0";
      }),
      "take over B's pod's address",
      BORROW_ONLY,
    );
    denied(
      await inLoose((spec) => {
        allocs(spec).find((a) => a.node === nodeA)!.node = nodeB;
      }),
      "hand its borrowed address to B",
      BORROW_ONLY,
    );
    denied(
      await inLoose((spec) => {
        spec.affinity = nodeA;
      }),
      "take B's block",
      NOT_OWN,
    );
    const got = JSON.parse(
      (await as(agentA, ["get", "ipamblock", blockName(cidrLoose), "-o", "json"])).stdout,
    );
    got.metadata.labels = { "weft.dev/x": "y" };
    const labelled = await as(agentA, ["replace", "-f", "-"], JSON.stringify(got));
    denied(labelled, "label B's block", BORROW_ONLY);
    denied(await as(agentA, ["delete", "ipamblock", blockName(cidrLoose)]), "delete B's block", NO_RBAC);
    allowed(
      await inLoose((spec) => {
        spec.allocations = allocs(spec).filter((a) => a.node !== nodeA);
      }),
      "give the borrowed address back",
    );
    denied(
      await inLoose((spec) => {
        spec.sequence = (spec.sequence as number) - 1;
      }),
      "wind the sequence back",
      BORROW_ONLY,
    );
    const after = JSON.parse(
      await cluster.kubectl(["get", "ipamblock", blockName(cidrLoose), "-o", "json"]),
    ) as { spec: { affinity: string; allocations: Array<{ handle: string }> } };
    assert.equal(after.spec.affinity, nodeB);
    assert.deepEqual(
      after.spec.allocations.map((a) => a.handle),
      ["b0.eth0"],
      "B's own allocation is untouched",
    );
  });

  test("an agent token without a node claim writes nothing", async () => {
    denied(
      await replaceBlock(agentUnbound, cidrA, (spec) => {
        spec.sequence = 2;
      }),
      "update a block without a node claim",
      /carry no node/,
    );
  });

  test("impersonation with the node-name extra meets the same policy", async () => {
    // kubectl 1.32 has no --as-user-extra flag; a kubeconfig says the same (as, as-user-extra)
    const imp = (node: string) => {
      const kc = parse(readFileSync(cluster.kubeconfig, "utf8")) as {
        users: Array<{ user: Record<string, unknown> }>;
      };
      for (const u of kc.users) {
        u.user.as = `system:serviceaccount:${namespace}:${agentSA}`;
        u.user["as-user-extra"] = { "authentication.kubernetes.io/node-name": [node] };
      }
      return hc.kubeconfigFile(`impersonate-${node}`, stringify(kc));
    };
    const patch = (node: string, cidr: string, seq: number) =>
      replaceBlock(imp(node), cidr, (spec) => {
        spec.sequence = seq;
      });
    allowed(await patch(nodeB, cidrB, 7), "B's agent updates B's block");
    denied(await patch(nodeB, cidrA, 7), "B's agent updates A's block", NOT_OWN);
  });

  test("the agent and the controller read Secrets of their own namespace only", async () => {
    for (const [who, kc] of [
      ["agent", agentA],
      ["controller", controller],
    ] as const) {
      allowed(
        await as(kc, ["get", "secret", "bgp-password", "-n", namespace]),
        `${who} reads its namespace's Secret`,
      );
      denied(
        await as(kc, ["get", "secret", "bgp-password", "-n", otherNamespace]),
        `${who} reads another namespace's Secret`,
        NO_RBAC,
      );
      denied(await as(kc, ["get", "secrets", "-A"]), `${who} lists Secrets everywhere`, NO_RBAC);
      denied(
        await as(kc, ["get", "secret", "bgp-password", "-n", "kube-system"]),
        `${who} reads kube-system`,
        NO_RBAC,
      );
    }
  });

  test("the controller writes blocks, RouteIntents and statuses, not NodeNetworkStatus or peers", async () => {
    const can = async (verb: string, resource: string, ns?: string) =>
      // the answer is a line of its own (kubectl may also warn, e.g. about cluster-scoped kinds)
      /^(yes|no)$/m.exec(
        (await as(controller, ["auth", "can-i", verb, resource, ...(ns ? ["-n", ns] : [])])).out,
      )?.[1];
    assert.equal(await can("create", "ipamblocks.weft.dev"), "yes");
    assert.equal(await can("update", "ippools.weft.dev"), "no", "a pool's spec is the user's");
    assert.equal(await can("update", "nodenetworkstatuses.weft.dev"), "no");
    assert.equal(await can("update", "bgppeers.weft.dev"), "no");
    assert.equal(await can("update", "leases.coordination.k8s.io/weft-controller", namespace), "yes");
    assert.equal(await can("update", "leases.coordination.k8s.io/other", namespace), "no");
    assert.equal(await can("create", "leases.coordination.k8s.io", otherNamespace), "no");
  });

  test("the controller's server-side applies go through: RouteIntent, pool finalizer, statuses", async () => {
    const intent = {
      apiVersion: "weft.dev/v1alpha1",
      kind: "RouteIntent",
      metadata: { name: nodeA, labels: { "weft.dev/test": tag } },
      spec: {
        node: nodeA,
        underlayIP: "192.0.2.11",
        encapsulation: "HostGW",
        routes: [],
        neighbors: [],
        fdb: [],
      },
    };
    allowed(await serverSideApply(controller, "weft-controller", intent), "apply a RouteIntent");
    const ready = {
      observedGeneration: 1,
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "Published",
          message: "",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    };
    const statusBody = (kind: string, name: string) => ({
      apiVersion: "weft.dev/v1alpha1",
      kind,
      metadata: { name },
      status: ready,
    });
    allowed(
      await serverSideApply(controller, "weft-controller", statusBody("RouteIntent", nodeA), "status"),
      "apply a RouteIntent's status",
    );
    allowed(
      await serverSideApply(
        controller,
        "weft-controller",
        statusBody("IPAMBlock", blockName(cidrB)),
        "status",
      ),
      "apply a block's status",
    );
    const finalizer = (finalizers?: string[]) => ({
      apiVersion: "weft.dev/v1alpha1",
      kind: "IPPool",
      metadata: { name: pool, ...(finalizers ? { finalizers } : {}) },
    });
    allowed(
      await serverSideApply(controller, "weft-controller-finalizer", finalizer(["weft.dev/pool-drain"])),
      "apply the pool's finalizer",
    );
    allowed(
      await serverSideApply(controller, "weft-controller-finalizer", finalizer()),
      "give the pool's finalizer up",
    );
    const pools = JSON.parse(await cluster.kubectl(["get", "ippool", pool, "-o", "json"]));
    assert.equal(pools.metadata.finalizers, undefined, "the finalizer left with its manager");
    denied(
      await serverSideApply(controller, "weft-controller", statusOf(nodeA), "status"),
      "apply a NodeNetworkStatus",
      NO_RBAC,
    );
  });

  for (const [name, sa] of [
    ["controller", controllerSA],
    ["agent", agentSA],
  ] as const) {
    test(`kubectl auth can-i --list for weft-${name} matches test/fixtures/rbac/${name}.txt`, async () => {
      const kc = name === "agent" ? agentA : controller;
      const rows = parseCanIList((await as(kc, ["auth", "can-i", "--list", "-n", namespace])).out);
      const text =
        `# kubectl auth can-i --list -n <namespace> as the ${name} ServiceAccount (test/integration/rbac.test.ts);\n` +
        "# resources  non-resource URLs  resource names  verbs. WEFT_UPDATE_FIXTURES=1 rewrites this file.\n" +
        normalizeRules(rows, [
          [namespace, "<namespace>"],
          [sa, `<${name}-serviceaccount>`],
        ]);
      const file = join(FIXTURES, `${name}.txt`);
      if (process.env.WEFT_UPDATE_FIXTURES === "1") writeFileSync(file, text);
      assert.ok(existsSync(file), `${file} is missing: run with WEFT_UPDATE_FIXTURES=1 and review it`);
      assert.equal(
        text,
        readFileSync(file, "utf8"),
        `permissions of weft-${name} changed; review, then WEFT_UPDATE_FIXTURES=1`,
      );
      // and nothing of it reaches Secrets outside its namespace
      const elsewhere = parseCanIList((await as(kc, ["auth", "can-i", "--list", "-n", otherNamespace])).out);
      assert.ok(
        !elsewhere.some((r) => r.resources === "secrets"),
        `${name} sees Secrets in ${otherNamespace}`,
      );
    });
  }
});
