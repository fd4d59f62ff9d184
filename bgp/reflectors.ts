import {
  ANNOTATIONS,
  AUTOMATIC_RR_CLUSTER_ID,
  type RouteReflectorStatus,
  type RouteReflectorsSpec,
} from "../api/index.js";
import { isIntInRange, isLabelKey } from "./validate.js";

/**
 * Automatic route reflectors (pure): which nodes reflect, kept in BGPConfiguration status by
 * weft-controller and read from there by every agent.
 *
 * - `count` reflectors, annotated nodes included (an annotation always wins: such a node reflects
 *   with its own cluster id, and the controller never chooses or drops it).
 * - Spread over the values of `zoneLabel`: each new reflector goes to the zone with the fewest.
 * - Eligible: a BGP node with an underlay address, not being deleted, and not NotReady for longer
 *   than a grace period. Preferred: Ready, then the oldest node (the most stable), then by name.
 * - One change at a time, make before break: a new reflector is added as Joining while the one it
 *   replaces keeps serving; once the newcomer's sessions are Established (or a deadline passed) it
 *   is Active, and only then is one reflector removed. A reflector whose node is gone is dropped at
 *   once (there is nothing left to keep), and its replacement joins.
 */

export interface ReflectorCandidate {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Ready condition: true, false (NotReady or Unknown) or undefined (no condition reported). */
  ready?: boolean;
  /** When the Ready condition last changed (for the NotReady grace). */
  readySince?: string;
  creationTimestamp?: string;
  deleting?: boolean;
  /** Has an underlay address (without one a node gets no session at all). */
  addressed: boolean;
}

export interface ReflectorChoiceInput {
  spec: RouteReflectorsSpec | undefined;
  /** The BGP nodes (only these can reflect). */
  nodes: readonly ReflectorCandidate[];
  /** BGPConfiguration status.routeReflectors as last written. */
  current: readonly RouteReflectorStatus[] | undefined;
  /** Whether a Joining reflector's node-to-node sessions are all Established. */
  sessionsUp: (node: string) => boolean;
  now: Date;
  /** A current reflector stays this long after its node turned NotReady (default 20 s). */
  notReadyGraceMs?: number;
  /** A Joining reflector becomes Active after this long even with sessions down (default 120 s). */
  joiningDeadlineMs?: number;
}

export interface ReflectorProblem {
  field: string;
  message: string;
}

export interface ReflectorChoice {
  /** The next status.routeReflectors (annotated nodes included, sorted by node name). */
  reflectors: RouteReflectorStatus[];
  /** What this step changed, for logs and the condition message; empty when nothing did. */
  changes: string[];
  problems: ReflectorProblem[];
  /** When to look again even if nothing else changes (a grace or deadline running), ms. */
  recheckMs?: number;
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Problems with spec.routeReflectors that the schema may not have caught (etcd datastore). */
export function routeReflectorsSpecProblems(spec: unknown): ReflectorProblem[] {
  if (spec === undefined) return [];
  if (typeof spec !== "object" || spec === null)
    return [{ field: "spec.routeReflectors", message: "must be an object with count" }];
  const s = spec as RouteReflectorsSpec;
  const out: ReflectorProblem[] = [];
  if (!isIntInRange(s.count, 1, 100))
    out.push({
      field: "spec.routeReflectors.count",
      message: `${JSON.stringify(s.count)} is not a count from 1 to 100`,
    });
  if (s.zoneLabel !== undefined && !isLabelKey(s.zoneLabel))
    out.push({
      field: "spec.routeReflectors.zoneLabel",
      message: `${JSON.stringify(s.zoneLabel)} is not a label key`,
    });
  return out;
}

export function chooseReflectors(input: ReflectorChoiceInput): ReflectorChoice {
  const now = input.now;
  const grace = input.notReadyGraceMs ?? 20_000;
  const deadline = input.joiningDeadlineMs ?? 120_000;
  const changes: string[] = [];
  const problems: ReflectorProblem[] = [];
  let recheckMs: number | undefined;
  const recheck = (ms: number) => {
    recheckMs = Math.max(1000, Math.min(recheckMs ?? ms, ms));
  };

  const nodes = new Map(input.nodes.map((n) => [n.name, n]));
  const annotated = [...input.nodes]
    .filter((n) => n.annotations[ANNOTATIONS.routeReflectorClusterID] !== undefined)
    .sort(byName);
  const manualNames = new Set(annotated.map((n) => n.name));
  const spec = input.spec;
  const specProblems = routeReflectorsSpecProblems(spec);
  problems.push(...specProblems);
  const zoneLabel = spec?.zoneLabel && isLabelKey(spec.zoneLabel) ? spec.zoneLabel : undefined;
  const zoneOf = (n: ReflectorCandidate | undefined) => (zoneLabel ? n?.labels[zoneLabel] : undefined);

  const manualEntries: RouteReflectorStatus[] = annotated.map((n) => {
    const old = input.current?.find((c) => c.node === n.name && c.source === "Annotation");
    const zone = zoneOf(n);
    return {
      node: n.name,
      ...(zone !== undefined ? { zone } : {}),
      clusterID: n.annotations[ANNOTATIONS.routeReflectorClusterID] as string,
      source: "Annotation",
      state: "Active",
      reason: `annotated ${ANNOTATIONS.routeReflectorClusterID}`,
      since: old?.since ?? iso(now),
    };
  });
  const finish = (auto: RouteReflectorStatus[]): ReflectorChoice => ({
    reflectors: [...manualEntries, ...auto].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)),
    changes,
    problems,
    ...(recheckMs !== undefined ? { recheckMs } : {}),
  });
  if (!spec || specProblems.length > 0) {
    const dropped = (input.current ?? []).filter((c) => c.source === "Automatic");
    if (dropped.length && spec)
      changes.push("automatic reflectors kept as they are until spec.routeReflectors is valid");
    else if (dropped.length)
      changes.push(`automatic reflectors off: ${dropped.map((d) => d.node).join(", ")} no longer reflect`);
    return finish(spec ? dropped : []);
  }

  /** Usable as a reflector right now; `keeping` lets a current one ride out a short NotReady. */
  const eligible = (n: ReflectorCandidate | undefined, keeping: boolean): boolean => {
    if (!n?.addressed || n.deleting) return false;
    if (n.ready !== false) return true;
    if (!keeping) return false;
    const since = n.readySince ? Date.parse(n.readySince) : Number.NaN;
    if (Number.isNaN(since)) return false;
    const left = since + grace - now.getTime();
    if (left > 0) recheck(left);
    return left > 0;
  };
  const whyNot = (name: string): string => {
    const n = nodes.get(name);
    if (!n) return "node is gone";
    if (n.deleting) return "node is being deleted";
    if (!n.addressed) return "node has no underlay address";
    if (n.ready === false) return "node is NotReady";
    return "not needed";
  };

  // Automatic reflectors from status; a node now annotated is the annotation's.
  let auto = (input.current ?? [])
    .filter((c) => c.source === "Automatic" && !manualNames.has(c.node))
    .map((c) => ({ ...c }));
  const gone = auto.filter((c) => !nodes.has(c.node));
  for (const g of gone) changes.push(`${g.node} no longer reflects (node is gone)`);
  auto = auto.filter((c) => nodes.has(c.node));

  const candidates = input.nodes.filter((n) => eligible(n, false) && !manualNames.has(n.name));
  const wanted = Math.max(0, spec.count - annotated.length);
  const eligibleCount = candidates.length + annotated.length;
  if (spec.count > eligibleCount)
    problems.push({
      field: "spec.routeReflectors.count",
      message: `asks for ${spec.count} reflectors but only ${eligibleCount} BGP node(s) can be one; every one of them reflects`,
    });
  if (zoneLabel && !input.nodes.some((n) => n.labels[zoneLabel] !== undefined))
    problems.push({
      field: "spec.routeReflectors.zoneLabel",
      message: `no BGP node has the label ${zoneLabel}; reflectors are chosen without zones`,
    });
  const zoned = zoneLabel !== undefined && input.nodes.some((n) => n.labels[zoneLabel] !== undefined);

  // A Joining reflector settles first: nothing else moves meanwhile.
  let waiting = false;
  for (const j of auto.filter((c) => c.state === "Joining")) {
    const n = nodes.get(j.node);
    if (!eligible(n, true)) {
      changes.push(`${j.node} stops joining (${whyNot(j.node)})`);
      auto = auto.filter((c) => c !== j);
      continue;
    }
    const age = now.getTime() - Date.parse(j.since);
    if (input.sessionsUp(j.node)) {
      j.state = "Active";
      changes.push(`${j.node} is Active: its sessions are Established`);
    } else if (!(age < deadline)) {
      j.state = "Active";
      j.reason = `${j.reason}; Active after ${Math.round(deadline / 1000)} s with sessions still down`;
      changes.push(`${j.node} is Active after the ${Math.round(deadline / 1000)} s deadline`);
    } else {
      waiting = true;
      recheck(deadline - age);
    }
  }
  if (waiting) return finish(auto);
  if (changes.some((c) => c.endsWith("is Active: its sessions are Established") || c.includes("deadline")))
    return finish(auto);

  // Who should reflect: the current healthy ones, topped up or trimmed to `wanted`.
  const zoneCount = new Map<string, number>();
  const countZone = (z: string | undefined, d: number) => {
    if (z !== undefined) zoneCount.set(z, (zoneCount.get(z) ?? 0) + d);
  };
  for (const m of annotated) countZone(zoneOf(m), 1);
  const healthy = auto.filter((c) => eligible(nodes.get(c.node), true));
  for (const h of healthy) countZone(zoneOf(nodes.get(h.node)), 1);
  const prefer = (a: ReflectorCandidate, b: ReflectorCandidate): number => {
    const ra = a.ready === true ? 0 : 1;
    const rb = b.ready === true ? 0 : 1;
    if (ra !== rb) return ra - rb;
    const ca = a.creationTimestamp ?? "";
    const cb = b.creationTimestamp ?? "";
    if (ca !== cb) return ca < cb ? -1 : 1;
    return byName(a, b);
  };
  const taken = new Set(auto.map((c) => c.node));
  const pool = candidates.filter((n) => !taken.has(n.name)).sort(prefer);
  const zonesWithCandidates = () =>
    new Set(pool.map((n) => zoneOf(n)).filter((z): z is string => z !== undefined));
  const leastZone = (): string | undefined => {
    const zs = [...zonesWithCandidates()].sort(
      (a, b) => (zoneCount.get(a) ?? 0) - (zoneCount.get(b) ?? 0) || (a < b ? -1 : 1),
    );
    return zs[0];
  };
  const pick = (): { node: ReflectorCandidate; why: string } | undefined => {
    if (pool.length === 0) return undefined;
    let chosen: ReflectorCandidate | undefined;
    let why = "";
    if (zoned) {
      const z = leastZone();
      chosen = z !== undefined ? pool.find((n) => zoneOf(n) === z) : pool[0];
      if (z !== undefined) why = `zone ${z} had ${zoneCount.get(z) ?? 0} reflector(s)`;
    } else chosen = pool[0];
    if (!chosen) return undefined;
    pool.splice(pool.indexOf(chosen), 1);
    const traits = [
      chosen.ready === true ? "Ready" : "no Ready condition",
      `node since ${chosen.creationTimestamp ?? "unknown"}`,
    ];
    return { node: chosen, why: [why, ...traits].filter(Boolean).join("; ") };
  };

  const unhealthy = auto.filter((c) => !healthy.includes(c));
  const entry = (n: ReflectorCandidate, reason: string): RouteReflectorStatus => {
    const zone = zoneOf(n);
    return {
      node: n.name,
      ...(zone !== undefined ? { zone } : {}),
      clusterID: AUTOMATIC_RR_CLUSTER_ID,
      source: "Automatic",
      state: "Joining",
      reason,
      since: iso(now),
    };
  };

  // First choice: every reflector at once (nothing to keep serving).
  if (auto.length === 0 && wanted > 0) {
    const out: RouteReflectorStatus[] = [];
    for (let i = 0; i < wanted; i++) {
      const p = pick();
      if (!p) break;
      countZone(zoneOf(p.node), 1);
      out.push(entry(p.node, `chosen (count ${spec.count}): ${p.why}`));
      changes.push(`${p.node.name} chosen as reflector`);
    }
    return finish(out);
  }

  const replaced = unhealthy[0] ?? (gone[0] as RouteReflectorStatus | undefined);
  const replacedWhy = replaced ? whyNot(replaced.node) : "";
  // Top up: one newcomer joins (replacing an unhealthy one, or filling the count).
  if (healthy.length < wanted) {
    const p = pick();
    if (p) {
      const reason = replaced
        ? `replaces ${replaced.node} (${replacedWhy}): ${p.why}`
        : `fills count ${spec.count}: ${p.why}`;
      changes.push(`${p.node.name} joins as reflector${replaced ? `, replacing ${replaced.node}` : ""}`);
      return finish([...auto, entry(p.node, reason)]);
    }
  }
  // Zone balance: a zone without reflectors takes one from the zone with the most.
  if (zoned && healthy.length === wanted && wanted > 0) {
    const z = leastZone();
    const most = [...zoneCount.entries()].sort((a, b) => b[1] - a[1])[0];
    if (z !== undefined && (zoneCount.get(z) ?? 0) === 0 && most && most[1] >= 2) {
      const p = pick();
      const from = healthy
        .filter((h) => zoneOf(nodes.get(h.node)) === most[0])
        .sort((a, b) => (a.since < b.since ? 1 : -1))[0];
      if (p && from) {
        changes.push(
          `${p.node.name} joins as reflector to balance zones; ${from.node} leaves once it is Active`,
        );
        return finish([
          ...auto,
          entry(p.node, `zone balance: ${p.why}; replaces ${from.node} (zone ${most[0]} had ${most[1]})`),
        ]);
      }
    }
  }
  // Then one leaves: an unhealthy one, or the newest of the most crowded zone when over count.
  if (unhealthy.length > 0) {
    const u = unhealthy[0] as RouteReflectorStatus;
    changes.push(`${u.node} no longer reflects (${whyNot(u.node)})`);
    return finish(auto.filter((c) => c !== u));
  }
  if (healthy.length > wanted) {
    const most = zoned
      ? [...zoneCount.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0]
      : undefined;
    const leave = healthy
      .filter((h) => most === undefined || zoneOf(nodes.get(h.node)) === most)
      .sort((a, b) => (a.since < b.since ? 1 : a.since > b.since ? -1 : a.node < b.node ? 1 : -1))[0];
    if (leave) {
      changes.push(`${leave.node} no longer reflects (count ${spec.count} reached)`);
      return finish(auto.filter((c) => c !== leave));
    }
  }
  return finish(auto);
}
