import type { Condition, NodeNetworkStatusStatus, PeerPath } from "../api/index.js";
import { canonicalJson, setCondition } from "../lib/index.js";
import type { DataplaneStatus } from "./dataplane/kernel.js";
import { NAT_TABLE_TEXT } from "./nat/rules.js";
import type { NatState } from "./nat/table.js";

export interface KernelFeatures {
  ipip: boolean;
}

export interface StatusInput {
  previous: NodeNetworkStatusStatus | undefined;
  generation: number | undefined;
  dataplane: DataplaneStatus;
  appliedIntents: Record<string, number>;
  problems: string[];
  vxlanWanted: boolean;
  kernel: KernelFeatures;
  ipipWanted: boolean;
  /** CrossSubnet decisions per peer and family. */
  peerPaths?: PeerPath[];
  /** MTU new pods get. */
  podMTU?: number;
  /** Outgoing NAT, when the agent manages it. */
  nat?: NatState;
  now?: Date;
}

/**
 * The NodeNetworkStatus an agent reports, from what the dataplane says it did. Pure, so every
 * condition's wording is unit-tested; `weftctl node status` and `kubectl wait` read the result.
 */
export function nodeStatus(input: StatusInput): NodeNetworkStatusStatus {
  const { dataplane: dp, now } = input;
  let conditions: Condition[] | undefined = input.previous?.conditions;
  const set = (type: string, ok: boolean, reason: string, message: string) => {
    conditions = setCondition(conditions, { type, status: ok, reason, message }, input.generation, now);
  };

  if (!input.vxlanWanted) set("VXLANDevice", true, "NotNeeded", "no VXLAN pool reaches this node");
  else if (dp.vxlan)
    set(
      "VXLANDevice",
      true,
      "Present",
      `${dp.vxlan.name} over ${dp.vxlan.underlay}, MTU ${dp.vxlan.mtu ?? "default"}`,
    );
  else set("VXLANDevice", false, "Missing", dp.lastError ?? "the VXLAN device is not set up yet");

  if (input.ipipWanted && !input.kernel.ipip)
    set(
      "KernelSupport",
      false,
      "IPIPUnsupported",
      "a pool uses IPIP but this kernel has no ipip module; its routes are not programmed",
    );
  else
    set(
      "KernelSupport",
      true,
      "Supported",
      input.kernel.ipip ? "IPIP, VXLAN" : "VXLAN (no IPIP in this kernel)",
    );

  const nat = input.nat;
  if (nat?.error) set("OutgoingNAT", false, "Failed", nat.error.slice(0, 1000));
  else if (nat?.applied)
    set(
      "OutgoingNAT",
      true,
      "Applied",
      `table ${NAT_TABLE_TEXT} masquerades pools ${nat.applied.pools.join(", ")}`,
    );
  else if (nat) set("OutgoingNAT", true, "NotNeeded", "no pool of this node has natOutgoing");

  // a NAT table that cannot be written is a dataplane that does not do what the pools say
  const problems = nat?.error ? [...input.problems, `outgoing NAT: ${nat.error}`] : input.problems;
  const failures = dp.failed.length + dp.conflicts.length;
  if (dp.converged && failures === 0 && problems.length === 0) {
    set(
      "Ready",
      true,
      "Converged",
      `${dp.owned.routes} routes, ${dp.owned.neighbors} neighbors, ${dp.owned.fdb} FDB entries applied`,
    );
  } else if (!dp.converged && failures === 0 && problems.length === 0) {
    set("Ready", false, "Converging", dp.lastError ?? "applying the desired state");
  } else {
    const first = [...dp.failed.map((f) => `${f.action}: ${f.code}`), ...dp.conflicts, ...problems][0] ?? "";
    set(
      "Ready",
      false,
      "Degraded",
      `${failures + problems.length} problem(s); first: ${first}`.slice(0, 1000),
    );
  }

  // Server-side apply turns a map emptied by its owner into null, which the schema refuses
  // (measured on the apiserver); an absent map is removed cleanly and reads as none applied.
  // (The same for the lists and objects below: absent when empty, never an empty value.)
  const {
    appliedIntents: _previous,
    underlay: _u,
    peerPaths: _p,
    nat: _n,
    ...previous
  } = input.previous ?? {};
  const u = dp.underlay;
  return {
    ...previous,
    observedGeneration: input.generation,
    conditions,
    ...(Object.keys(input.appliedIntents).length > 0 ? { appliedIntents: input.appliedIntents } : {}),
    ...(u
      ? {
          underlay: {
            device: u.name,
            mtu: u.mtu,
            ...(u.addresses.length ? { addresses: u.addresses } : {}),
            ...(dp.vxlan?.mtu !== undefined ? { vxlanMTU: dp.vxlan.mtu } : {}),
            podMTU: input.podMTU ?? dp.vxlan?.mtu ?? u.mtu,
          },
        }
      : {}),
    ...(input.peerPaths?.length ? { peerPaths: input.peerPaths } : {}),
    ...(nat?.applied ? { nat: { table: NAT_TABLE_TEXT, pools: nat.applied.pools } } : {}),
    owned: { ...dp.owned },
    lastSyncTime: (now ?? new Date()).toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
}

/** Status minus the fields that change on every write, to skip writes that say nothing new. */
export function statusFingerprint(s: NodeNetworkStatusStatus): string {
  const { lastSyncTime: _t, ...rest } = s;
  return canonicalJson(rest);
}
