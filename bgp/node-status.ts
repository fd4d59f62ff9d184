import type { BGPSessionStatus, Condition } from "../api/index.js";
import { setCondition } from "../lib/index.js";

/**
 * The BGP part of a node's NodeNetworkStatus (pure): the session list and the conditions `BGP`
 * and `BGPPasswords`. Every message here is built from Weft's own data or BIRD's state words,
 * and passes through `redact` so that no password can reach status even by accident.
 */

export interface BgpStatusInput {
  conditions: readonly Condition[] | undefined;
  generation: number | undefined;
  /** Sessions BIRD reports for the rendered protocols (undefined: BIRD not read yet). */
  sessions: BGPSessionStatus[] | undefined;
  /** Sessions the rendering holds. */
  expected: number;
  /** Why sessions or values were left out (topology and rendering problems). */
  problems: string[];
  /** BIRD refused the configuration or could not be started. */
  applyError?: string;
  /** Sessions of this node that carry a password. */
  passwordSessions: number;
  md5Supported: boolean;
  /** Password Secrets that cannot be used, each named (`Secret ns/name not found`); never values. */
  missingSecrets?: readonly string[];
  /** Known secret values, scrubbed from every message. */
  secrets?: readonly string[];
  now?: Date;
}

export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join("***");
  return out;
}

/** Status keys are unique per node (list-map key `peer`): a repeated name gets its address appended. */
export function uniquePeers(sessions: BGPSessionStatus[]): BGPSessionStatus[] {
  const count = new Map<string, number>();
  for (const s of sessions) count.set(s.peer, (count.get(s.peer) ?? 0) + 1);
  const used = new Set<string>();
  return sessions.map((s) => {
    let peer = (count.get(s.peer) ?? 0) > 1 ? `${s.peer}/${s.peerIP}` : s.peer;
    while (used.has(peer)) peer = `${peer}'`;
    used.add(peer);
    return peer === s.peer ? s : { ...s, peer };
  });
}

export function bgpStatus(input: BgpStatusInput): {
  bgpSessions: BGPSessionStatus[];
  conditions: Condition[];
} {
  const secrets = input.secrets ?? [];
  const clean = (t: string) => redact(t, secrets).slice(0, 1000);
  const sessions = uniquePeers(
    (input.sessions ?? []).map((s) => (s.info ? { ...s, info: clean(s.info) } : s)),
  );
  let conditions: Condition[] | undefined = [...(input.conditions ?? [])];
  const set = (type: string, ok: boolean, reason: string, message: string) => {
    conditions = setCondition(
      conditions,
      { type, status: ok, reason, message: clean(message) },
      input.generation,
      input.now,
    );
  };

  const up = sessions.filter((s) => s.state === "Established").length;
  if (input.applyError) {
    set("BGP", false, "ConfigRejected", input.applyError);
  } else if (input.sessions === undefined && input.expected > 0) {
    set("BGP", false, "Starting", `BIRD is starting; ${input.expected} session(s) configured`);
  } else if (input.problems.length > 0) {
    set(
      "BGP",
      false,
      "Degraded",
      `${up}/${input.expected} sessions established; ${input.problems.length} problem(s); first: ${input.problems[0]}`,
    );
  } else if (up < input.expected) {
    const down = sessions
      .filter((s) => s.state !== "Established")
      .slice(0, 5)
      .map((s) => `${s.peer} (${s.peerIP}) ${s.state}`);
    set(
      "BGP",
      false,
      "SessionsDown",
      `${up}/${input.expected} sessions established; down: ${down.join(", ")}`,
    );
  } else {
    set("BGP", true, "Established", `${up}/${input.expected} sessions established`);
  }

  const missing = input.missingSecrets ?? [];
  if (missing.length > 0)
    set(
      "BGPPasswords",
      false,
      "SecretUnavailable",
      `${missing.join("; ")}: the sessions that need it stay down until it is back`,
    );
  else if (input.passwordSessions > 0 && !input.md5Supported)
    set(
      "BGPPasswords",
      false,
      "TCPMD5Unsupported",
      `${input.passwordSessions} session(s) need a TCP MD5 password but this kernel has no TCP MD5 support; they are left out`,
    );
  else if (input.passwordSessions > 0)
    set("BGPPasswords", true, "Supported", `${input.passwordSessions} session(s) use TCP MD5 passwords`);
  else if (conditions.some((c) => c.type === "BGPPasswords"))
    set("BGPPasswords", true, "NotNeeded", "no session uses a password");

  return { bgpSessions: sessions, conditions };
}
