import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { describe, it } from "node:test";
import { type AgentRequest, CniError, ErrorCode } from "../../cni/index.js";
import type { PodIpamRequest } from "../../ipam/index.js";
import {
  type AddressAssigner,
  AssignmentRefused,
  type AssignRequest,
  type PodIpamSource,
  type PodRef,
} from "./assigner.js";
import type { HostNet } from "./hostnet.js";
import type { PodNetns } from "./podns.js";
import { PodNetworkService } from "./service.js";

/** The kernel side does nothing here: these tests are about what reaches the IPAM and the pod. */
const hostNet = {
  link: async () => ({ index: 7, up: true }),
  createVeth: async () => ({ index: 7, up: true }),
  deleteLink: async () => true,
  setUp: async () => undefined,
  replacePodRoute: async () => undefined,
  replacePodNeighbor: async () => undefined,
  hasPodRoute: async () => true,
} as unknown as HostNet;
const podNetns: PodNetns = { configure: async () => undefined, inspect: async () => ({}) as never };

function request(): AgentRequest {
  return {
    command: "ADD",
    containerId: "sandbox1",
    // any path that exists: the fake kernel never enters it
    netns: tmpdir(),
    ifname: "eth0",
    args: { K8S_POD_NAMESPACE: "web", K8S_POD_NAME: "db-0" },
    config: { cniVersion: "1.0.0", name: "weft", type: "weft" },
  };
}

function setup(opts: {
  lookup?: PodIpamSource["lookup"];
  assign?: (r: AssignRequest) => Promise<{ ips: string[] }>;
}) {
  const assigned: AssignRequest[] = [];
  const events: Array<{ pod: PodRef; reason: string; message: string }> = [];
  let lookups = 0;
  const held = new Map<string, string[]>();
  const assigner: AddressAssigner = {
    assign: async (r) => {
      assigned.push(r);
      const out = opts.assign ? await opts.assign(r) : { ips: ["10.0.0.9"] };
      held.set(r.handle, out.ips);
      return out;
    },
    release: async (h) => void held.delete(h),
    lookup: async (h) => (held.has(h) ? { ips: held.get(h)! } : undefined),
  };
  const service = new PodNetworkService({
    node: "n1",
    assigner,
    hostNet,
    podNetns,
    podIpam: {
      lookup: async (ns, name) => {
        lookups++;
        return opts.lookup ? opts.lookup(ns, name) : undefined;
      },
    },
    events: { warn: (pod, reason, message) => events.push({ pod, reason, message }) },
  });
  return { service, assigned, events, lookups: () => lookups };
}

async function cniError(p: Promise<unknown>): Promise<CniError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CniError, String(err));
    return err;
  }
  assert.fail("expected a CNI error");
}

describe("CNI service and the pod's IPAM annotations", () => {
  const ask: PodIpamRequest = {
    pools: { 4: { names: ["blue"], source: "annotation weft.dev/ipv4pools of namespace web" } },
    addresses: {},
  };
  const pod = { namespace: "web", name: "db-0", uid: "u-1" };

  it("hands what the annotations ask for to the IPAM, and reads the pod once per sandbox", async () => {
    const t = setup({ lookup: async () => ({ pod, request: ask }) });
    await t.service.handle(request());
    assert.deepEqual(t.assigned[0]?.ipam, ask);
    await t.service.handle(request());
    assert.equal(t.lookups(), 1, "a repeated ADD of a sandbox that holds its address reads nothing");
  });

  for (const [kind, code, reason] of [
    ["InvalidAnnotation", ErrorCode.InvalidPodAnnotation, "InvalidIPAMAnnotation"],
    ["PoolNotUsable", ErrorCode.PoolNotUsable, "IPPoolNotUsable"],
    ["AddressUnavailable", ErrorCode.AddressUnavailable, "FixedAddressUnavailable"],
  ] as const) {
    it(`a ${kind} refusal is CNI error ${code} with the message, and a ${reason} Event on the pod`, async () => {
      const msg = `annotation weft.dev/ipv4pools of namespace web: pool blue is disabled (${kind})`;
      const t = setup({
        lookup: async () => ({ pod, request: ask }),
        assign: async () => {
          throw new AssignmentRefused(kind, msg);
        },
      });
      const err = await cniError(t.service.handle(request()));
      assert.equal(err.code, code);
      assert.equal(err.details, msg);
      assert.deepEqual(t.events, [{ pod, reason, message: msg }]);
    });
  }

  it("an annotation that does not parse refuses before anything is assigned", async () => {
    const t = setup({
      lookup: async () => {
        throw new AssignmentRefused(
          "InvalidAnnotation",
          "annotation weft.dev/ipv4pools of pod web/db-0 is not JSON",
        );
      },
    });
    const err = await cniError(t.service.handle(request()));
    assert.equal(err.code, ErrorCode.InvalidPodAnnotation);
    assert.equal(t.assigned.length, 0);
    assert.equal(t.events[0]?.reason, "InvalidIPAMAnnotation");
  });

  it("an API that cannot be read is try-again-later, never the default pools", async () => {
    const t = setup({
      lookup: async () => {
        throw new Error("connect ECONNREFUSED");
      },
    });
    const err = await cniError(t.service.handle(request()));
    assert.equal(err.code, ErrorCode.TryAgainLater);
    assert.match(err.message, /cannot read pod web\/db-0/);
    assert.equal(t.assigned.length, 0);
  });
});
