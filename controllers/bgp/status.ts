import type {
  BGPConfiguration,
  BGPPeer,
  BGPStatus,
  Condition,
  IPPool,
  NodeLike,
  SecretKeyRef,
} from "../../api/index.js";
import {
  bgpNodeNames,
  computeTopology,
  secretRefKey,
  secretRefProblems,
  type Topology,
  topologyInputFrom,
} from "../../bgp/index.js";

/**
 * Status of BGPPeers and the BGPConfiguration (pure): which nodes an object applies to, how many
 * sessions it makes, and conditions Ready / Invalid with observedGeneration, so that a
 * misconfiguration shows in `kubectl get bgppeers`. Password checks come in as verdicts
 * (secretRefKey -> problem or undefined); no password value ever reaches this module.
 */

export interface BgpStatusInput {
  nodes: readonly NodeLike[];
  pools: readonly IPPool[];
  peers: readonly BGPPeer[];
  config?: BGPConfiguration;
  /** secretRefKey -> why the password is unusable (undefined: usable). Missing key: not checked. */
  passwords?: ReadonlyMap<string, string | undefined>;
}

type CondInput = Pick<Condition, "type" | "status" | "reason" | "message">;

export interface DesiredBgpStatus {
  topology: Topology;
  peers: Map<string, { status: Omit<BGPStatus, "conditions">; conditions: CondInput[] }>;
  config?: { status: Omit<BGPStatus, "conditions">; conditions: CondInput[] };
}

function passwordVerdict(
  ref: SecretKeyRef | undefined,
  passwords: ReadonlyMap<string, string | undefined> | undefined,
): string | undefined {
  if (!ref || !passwords) return undefined;
  const key = secretRefKey(ref);
  if (!passwords.has(key)) return undefined;
  const why = passwords.get(key);
  return why
    ? `password (Secret ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}, key ${ref.key}): ${why}`
    : undefined;
}

function conditions(invalid: string | undefined, invalidReason: string, ready: CondInput): CondInput[] {
  if (invalid)
    return [
      { type: "Ready", status: "False", reason: invalidReason, message: invalid },
      { type: "Invalid", status: "True", reason: invalidReason, message: invalid },
    ];
  return [ready, { type: "Invalid", status: "False", reason: "Valid", message: "the spec is valid" }];
}

export function desiredBgpStatus(input: BgpStatusInput): DesiredBgpStatus {
  const topology = computeTopology(topologyInputFrom(input));
  const problemsOf = (kind: string, name: string) =>
    topology.problems.filter((p) => p.kind === kind && p.name === name).map((p) => p.message);

  const peers: DesiredBgpStatus["peers"] = new Map();
  for (const peer of input.peers) {
    const name = peer.metadata.name;
    const t = topology.peers[name] ?? { valid: false, selectedNodes: [], expectedSessions: 0 };
    const problems = problemsOf("BGPPeer", name);
    const pw = passwordVerdict(peer.spec?.password, input.passwords);
    const invalid = !t.valid ? problems.join("; ") || "invalid spec" : pw;
    const status = {
      ...(peer.metadata.generation !== undefined ? { observedGeneration: peer.metadata.generation } : {}),
      selectedNodes: [...t.selectedNodes].sort(),
      expectedSessions: t.expectedSessions,
    };
    let ready: CondInput;
    if (t.selectedNodes.length === 0)
      ready = {
        type: "Ready",
        status: "False",
        reason: "NoNodesSelected",
        message: "no BGP node matches node/nodeSelector, so this peer makes no session",
      };
    else if (t.expectedSessions === 0)
      ready = {
        type: "Ready",
        status: "False",
        reason: "NoSessions",
        message: problems[0] ?? "the selected nodes get no session from this peer",
      };
    else
      ready = {
        type: "Ready",
        status: "True",
        reason: "Configured",
        message: `${t.expectedSessions} session(s) on ${t.selectedNodes.length} node(s)${problems.length ? `; ${problems.length} problem(s), first: ${problems[0]}` : ""}`,
      };
    peers.set(name, {
      status,
      conditions: conditions(invalid, !t.valid ? "InvalidSpec" : "InvalidPassword", ready),
    });
  }

  let config: DesiredBgpStatus["config"];
  if (input.config) {
    const c = input.config;
    const problems = problemsOf("BGPConfiguration", c.metadata.name);
    const pw = passwordVerdict(c.spec?.meshPassword, input.passwords);
    const invalid = problems.length ? problems.join("; ") : pw;
    const nodeSessions = topology.sessions.filter((s) => !s.external).length;
    const names = bgpNodeNames(input.nodes, input.pools, input.peers);
    config = {
      status: {
        ...(c.metadata.generation !== undefined ? { observedGeneration: c.metadata.generation } : {}),
        selectedNodes: [...names].sort(),
        expectedSessions: nodeSessions,
      },
      conditions: conditions(invalid, problems.length ? "InvalidSpec" : "InvalidPassword", {
        type: "Ready",
        status: "True",
        reason: "Configured",
        message: `AS ${topology.asNumber}; mesh ${topology.meshEnabled ? "on" : "off"}; ${topology.reflectors.length} reflector(s); ${nodeSessions} node-to-node session(s) among ${names.size} node(s)`,
      }),
    };
  }
  return { topology, peers, ...(config ? { config } : {}) };
}

/** Secret references of the objects (each once), for the controller to check. */
export function referencedPasswords(peers: readonly BGPPeer[], config?: BGPConfiguration): SecretKeyRef[] {
  const out = new Map<string, SecretKeyRef>();
  for (const ref of [...peers.map((p) => p.spec?.password), config?.spec?.meshPassword]) {
    if (ref && secretRefProblems(ref, "password").length === 0) out.set(secretRefKey(ref), ref);
  }
  return [...out.values()];
}
