/**
 * The IPAM refusals of a pod's annotations, as a container runtime sees them: the real native
 * plugin (cni/native, what the chart installs) and the Node.js plugin, each run as a runtime runs
 * it against the agent's real CNI server (startCniServer: POST /v1/cni/exec and the Node.js
 * plugin's endpoint). The IPAM behind the server refuses as the Assigner does; the kernel side is
 * never reached. Both plugins must print the same CNI error JSON: code 101-103 and the message that
 * names the annotation and the pool.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { bundlePlugin } from "../../cni/bundler.js";
import { ErrorCode } from "../../cni/index.js";
import { nativeCniPlugin } from "../../devenv/tools.js";
import type { PodIpamRequest } from "../../ipam/index.js";
import { type AddressAssigner, AssignmentRefused, type PodIpamSource } from "./assigner.js";
import type { HostNet } from "./hostnet.js";
import type { PodNetns } from "./podns.js";
import { type CniServer, startCniServer } from "./server.js";

const dir = mkdtempSync(join(tmpdir(), `weft-cni-refusals-${process.pid}-`));
const socket = join(dir, "agent.sock");
let native = "";
let nodePlugin = "";
let server: CniServer;

/** Which refusal the IPAM answers for the pod being added, by pod name. */
const refusals = new Map<string, AssignmentRefused>();
const events: Array<{ pod: string; reason: string; message: string }> = [];
let assigned = 0;

const failingKernel = new Proxy(
  {},
  {
    get: () => async () => {
      throw new Error("the kernel must not be reached when the IPAM refuses");
    },
  },
);

const assigner: AddressAssigner = {
  assign: async (r) => {
    const refusal = refusals.get(r.pod ?? "");
    if (refusal) throw refusal;
    assigned++;
    throw new Error(`pod ${r.pod} has no refusal set up`);
  },
  release: async () => undefined,
  lookup: async () => undefined,
};

const ask: PodIpamRequest = {
  pools: { 4: { names: ["blue"], source: "annotation weft.dev/ipv4pools of pod web/db-0", onPod: true } },
  addresses: {},
};

const podIpam: PodIpamSource = {
  lookup: async (namespace, name) => {
    if (name === "bad-json")
      throw new AssignmentRefused(
        "InvalidAnnotation",
        `annotation weft.dev/ipv4pools of pod ${namespace}/${name} is not JSON: Unexpected token 'o', "[oops" is not valid JSON`,
      );
    return { pod: { namespace, name, uid: `uid-${name}` }, request: ask };
  },
};

function run(argv: string[], env: Record<string, string>, stdin: string) {
  return new Promise<{ status: number | null; stdout: string }>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["pipe", "pipe", "ignore"] });
    const out: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout: Buffer.concat(out).toString("utf8") }));
    child.stdin.end(stdin);
  });
}

const env = (pod: string, container: string) => ({
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: container,
  CNI_NETNS: dir,
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
  CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=web;K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${container}`,
});
const conf = JSON.stringify({ cniVersion: "1.0.0", name: "weft", type: "weft", agentSocket: socket });

before(async () => {
  native = nativeCniPlugin();
  nodePlugin = await bundlePlugin(join(dir, "bin"));
  server = await startCniServer({
    socketPath: socket,
    node: "n1",
    assigner,
    hostNet: failingKernel as HostNet,
    podNetns: failingKernel as PodNetns,
    podIpam,
    events: { warn: (pod, reason, message) => events.push({ pod: pod.name, reason, message }) },
  });
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("IPAM refusals through the plugins a runtime execs", () => {
  const cases: Array<[string, number, string, AssignmentRefused | undefined]> = [
    ["bad-json", ErrorCode.InvalidPodAnnotation, "InvalidIPAMAnnotation", undefined],
    [
      "v6-in-v4",
      ErrorCode.InvalidPodAnnotation,
      "InvalidIPAMAnnotation",
      new AssignmentRefused(
        "InvalidAnnotation",
        "annotation weft.dev/ip-addresses of pod web/v6-in-v4: fd00::5 is an IPv6 address, but this network assigns IPv4 only",
      ),
    ],
    [
      "unknown-pool",
      ErrorCode.PoolNotUsable,
      "IPPoolNotUsable",
      new AssignmentRefused(
        "PoolNotUsable",
        "annotation weft.dev/ipv4pools of pod web/unknown-pool: pool blue does not exist",
      ),
    ],
    [
      "held",
      ErrorCode.AddressUnavailable,
      "FixedAddressUnavailable",
      new AssignmentRefused(
        "AddressUnavailable",
        "annotation weft.dev/ip-addresses of pod web/held: 10.0.0.5 is in use by pod web/db-0 (handle c9.eth0, node n2)",
      ),
    ],
  ];

  for (const [pod, code, reason, refusal] of cases) {
    it(`${pod}: code ${code} with the message, the same bytes from both plugins, a ${reason} Event`, async () => {
      if (refusal) refusals.set(pod, refusal);
      events.length = 0;
      const byNative = await run([native], env(pod, `n-${pod}`), conf);
      const byNode = await run([process.execPath, nodePlugin], env(pod, `j-${pod}`), conf);
      assert.equal(byNative.status, 1, byNative.stdout);
      const printed = JSON.parse(byNative.stdout) as { code: number; msg: string; details?: string };
      assert.equal(printed.code, code, byNative.stdout);
      assert.equal(printed.msg, "the pod's address request cannot be met");
      const named = refusal?.message ?? `annotation weft.dev/ipv4pools of pod web/${pod} is not JSON`;
      assert.ok(
        printed.details?.startsWith(named),
        `details name the annotation and the pod: ${byNative.stdout}`,
      );
      assert.deepEqual(byNode, byNative, "the Node.js plugin prints the same");
      assert.deepEqual(
        events.map((e) => [e.pod, e.reason]),
        [
          [pod, reason],
          [pod, reason],
        ],
        "one Warning Event per ADD",
      );
    });
  }

  it("nothing reached the IPAM without a refusal, nor the kernel", () => {
    assert.equal(assigned, 0);
  });
});
