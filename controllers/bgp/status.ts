import type {
  BGPConfiguration,
  BGPConfigurationStatus,
  BGPPeer,
  BGPStatus,
  Condition,
  IPPool,
  NodeLike,
  NodeNetworkStatus,
  SecretKeyRef,
} from "../../api/index.js";
import {
  bgpNodeNames,
  computeTopology,
  type GlobalSession,
  type ReflectorProblem,
  secretRefKey,
  secretRefProblems,
  type Topology,
  topologyInputFrom,
} from "../../bgp/index.js";

/**
 * Status of BGPPeers and the BGPConfiguration (pure): which nodes an object applies to, how many
 * sessions it makes and how many of those the nodes report Established (each session is looked up
 * in the NodeNetworkStatus of one of its ends), and conditions Ready / Invalid with
 * observedGeneration, so that a misconfiguration or a session that is down shows in
 * `kubectl get bgppeers`. Password checks come in as verdicts (secretRefKey -> problem or
 * undefined); no password value ever reaches this module.
 */

export interface BgpStatusInput {
  nodes: readonly NodeLike[];
  pools: readonly IPPool[];
  peers: readonly BGPPeer[];
  config?: BGPConfiguration;
  /** secretRefKey -> why the password is unusable (undefined: usable). Missing key: not checked. */
  passwords?: ReadonlyMap<string, string | undefined>;
  /** The nodes' reports; without them Established is not counted and Ready means configured. */
  nodeStatuses?: readonly NodeNetworkStatus[];
  /** The reflectors chosen this pass (BGPConfiguration status.routeReflectors) and the problems met. */
  reflectors?: Pick<BGPConfigurationStatus, "routeReflectors"> & { problems: ReflectorProblem[] };
}

type CondInput = Pick<Condition, "type" | "status" | "reason" | "message">;

export interface DesiredBgpStatus {
  topology: Topology;
  peers: Map<string, { status: Omit<BGPStatus, "conditions">; conditions: CondInput[] }>;
  config?: { status: Omit<BGPConfigurationStatus, "conditions">; conditions: CondInput[] };
}

/** Established sessions of a list, from the NodeNetworkStatus of each session's first end. */
export function establishedOf(
  sessions: readonly GlobalSession[],
  nodeStatuses: readonly NodeNetworkStatus[],
): { established: number; down: string[] } {
  const byNode = new Map<string, Map<string, string>>();
  for (const nns of nodeStatuses)
    byNode.set(nns.spec.node, new Map((nns.status?.bgpSessions ?? []).map((x) => [x.peerIP, x.state])));
  let established = 0;
  const down: string[] = [];
  for (const s of sessions) {
    const state = byNode.get(s.a)?.get(s.bIP);
    if (state === "Established") established++;
    else down.push(`${s.a} -> ${s.b} (${s.bIP}) ${state ?? "not reported"}`);
  }
  return { established, down };
}

function sessionsReady(
  what: string,
  sessions: readonly GlobalSession[],
  nodeStatuses: readonly NodeNetworkStatus[] | undefined,
  configured: string,
): { established?: number; ready: CondInput } {
  if (!nodeStatuses)
    return { ready: { type: "Ready", status: "True", reason: "Configured", message: configured } };
  const { established, down } = establishedOf(sessions, nodeStatuses);
  if (down.length === 0)
    return {
      established,
      ready: {
        type: "Ready",
        status: "True",
        reason: "Established",
        message: `${established}/${sessions.length} ${what} established; ${configured}`,
      },
    };
  const shown = down.slice(0, 5).join(", ");
  return {
    established,
    ready: {
      type: "Ready",
      status: "False",
      reason: "SessionsDown",
      message: `${established}/${sessions.length} ${what} established; down: ${shown}${down.length > 5 ? `, and ${down.length - 5} more` : ""}`,
    },
  };
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
    let established: number | undefined;
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
    else {
      const r = sessionsReady(
        "session(s)",
        topology.sessions.filter((x) => x.source === `BGPPeer/${name}`),
        input.nodeStatuses,
        `${t.expectedSessions} session(s) on ${t.selectedNodes.length} node(s)${problems.length ? `; ${problems.length} problem(s), first: ${problems[0]}` : ""}`,
      );
      ready = r.ready;
      established = r.established;
    }
    if (input.nodeStatuses) (status as BGPStatus).establishedSessions = established ?? 0;
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
    const nodeSessionList = topology.sessions.filter((s) => !s.external);
    const nodeSessions = nodeSessionList.length;
    const names = bgpNodeNames(input.nodes, input.pools, input.peers);
    const r = sessionsReady(
      "node-to-node session(s)",
      nodeSessionList,
      input.nodeStatuses,
      `AS ${topology.asNumber}; mesh ${topology.meshEnabled ? "on" : "off"}; ${topology.reflectors.length} reflector(s)${topology.reflectors.length ? ` (${topology.reflectors.join(", ")})` : ""}; ${nodeSessions} node-to-node session(s) among ${names.size} node(s)`,
    );
    const conds = conditions(invalid, problems.length ? "InvalidSpec" : "InvalidPassword", r.ready);
    const rr = input.reflectors;
    if (c.spec?.routeReflectors || (rr?.routeReflectors?.length ?? 0) > 0) {
      const first = rr?.problems[0];
      const chosen = (rr?.routeReflectors ?? []).map(
        (x) => `${x.node}${x.zone ? ` (zone ${x.zone})` : ""} ${x.state}`,
      );
      conds.push(
        first
          ? {
              type: "RouteReflectors",
              status: "False",
              reason: first.field.endsWith(".count")
                ? "NotEnoughNodes"
                : first.field.endsWith(".zoneLabel")
                  ? "ZoneLabelUnused"
                  : "InvalidSpec",
              message: `${rr?.problems.map((p) => `${p.field}: ${p.message}`).join("; ")}; reflectors: ${chosen.join(", ") || "none"}`,
            }
          : {
              type: "RouteReflectors",
              status: "True",
              reason: chosen.some((x) => x.endsWith("Joining")) ? "Changing" : "Chosen",
              message: `reflectors: ${chosen.join(", ") || "none"}`,
            },
      );
    }
    config = {
      status: {
        ...(c.metadata.generation !== undefined ? { observedGeneration: c.metadata.generation } : {}),
        selectedNodes: [...names].sort(),
        expectedSessions: nodeSessions,
        ...(r.established !== undefined ? { establishedSessions: r.established } : {}),
        ...(rr?.routeReflectors?.length ? { routeReflectors: rr.routeReflectors } : {}),
      },
      conditions: conds,
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
