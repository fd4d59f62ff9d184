import { createHash } from "node:crypto";
import {
  ANNOTATIONS,
  BFD_DEFAULTS,
  type BFDSpec,
  BGP_DEFAULTS,
  type BGPConfiguration,
  type BGPConfigurationSpec,
  type BGPPeer,
  type LabelSelector,
  type SecretKeyRef,
} from "../api/index.js";
import { matchesSelector } from "../lib/index.js";
import {
  type CanonicalAddress,
  compareIP,
  type Family,
  formatCidr,
  formatIP,
  tryCanonicalAddress,
  tryParseCidr,
} from "../net/index.js";
import {
  bfdProblems,
  communityProblems,
  isASNumber,
  isIntInRange,
  isPort,
  secretRefProblems,
  selectorProblems,
} from "./validate.js";

/**
 * Who peers with whom (pure; shared by the controller for status and counts, by the agent for
 * its own BIRD configuration, and by weftctl for `bgp topology`).
 *
 * Rules:
 * - Full mesh between all nodes (each pair once per address family; the side with the higher
 *   address is passive so that only one side dials).
 * - A node annotated `weft.dev/route-reflector-cluster-id` is a reflector, and so is a node listed
 *   in BGPConfiguration status.routeReflectors while spec.routeReflectors is set (weft-controller
 *   chose it; the annotation wins). Reflectors peer with each other; every other node is a client
 *   of every reflector. Once reflectors exist the mesh is off, unless BGPConfiguration
 *   `meshWithReflectors: true` keeps it (nodeToNodeMesh must be true).
 * - Between two reflectors, the senior one (annotated before automatic, then the one chosen
 *   first) treats the junior as a client and the junior treats the senior as a plain peer. So a
 *   node that becomes a reflector keeps every session it had exactly as it was (BIRD would restart
 *   a session whose `rr client` changed, and its peer would drop the routes); it only gains
 *   sessions. With one cluster id the two drop each other's reflections; with different ids they
 *   carry them.
 * - BGPPeer with `peerIP`: an external session from each node chosen by `node`/`nodeSelector`
 *   (none of the two: every node).
 * - BGPPeer with `peerSelector`: sessions between each chosen node and each node the peer
 *   selector matches (both ends get the session, so it comes up).
 * A node never has two sessions to one address: reflector sessions win over the mesh, the mesh
 * over peerSelector peers.
 */

export type SessionKind = "mesh" | "rr-client" | "rr-peer" | "rr-to-client" | "external" | "node-peer";

export interface TopologyNode {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  underlayIPv4?: string;
  underlayIPv6?: string;
  /** What was wrong with the node's underlay annotation (reported on the node, never used). */
  underlayProblems?: string[];
}

export interface TopologySession {
  /** Node name for node-to-node sessions, BGPPeer name for external ones. */
  peerName: string;
  peerNode?: string;
  peerIP: string;
  localIP: string;
  family: Family;
  peerAS: number;
  localAS: number;
  kind: SessionKind;
  /** Wait for the peer to connect (the higher address of a node pair). */
  passive: boolean;
  /** Set on a reflector's sessions to its clients. */
  rrClient?: boolean;
  rrClusterID?: string;
  password?: SecretKeyRef;
  /** Remote TCP port. */
  port: number;
  /** What asked for this session: "mesh", "route-reflector" or "BGPPeer/<name>". */
  source: string;
  /** BFD on this session (interval and multiplier already defaulted and checked). */
  bfd?: { intervalMs: number; multiplier: number };
  /** Communities added to every route sent on this session (external peers). */
  communities?: string[];
  /** Learn routes inside the pools from this external peer (one in the nodes' AS: a reflector). */
  importPools?: boolean;
}

/** Service ranges a node announces to external peers, and the communities per prefix class. */
export interface NodeServices {
  clusterIPs: string[];
  loadBalancerIPs: string[];
}

export interface ClassCommunities {
  blocks: string[];
  serviceClusterIPs: string[];
  serviceLoadBalancerIPs: string[];
}

export interface NodeTopology {
  node: string;
  routerID: string;
  localAS: number;
  listenPort: number;
  gracefulRestartSeconds: number;
  keepaliveSeconds: number;
  holdSeconds: number;
  routeReflectorClusterID?: string;
  sessions: TopologySession[];
  /** Set on the nodes that announce Service addresses (serviceNodeSelector). */
  services?: NodeServices;
  communities?: ClassCommunities;
}

/** One session counted once, for status counts and `weftctl bgp topology`. */
export interface GlobalSession {
  kind: "mesh" | "rr-client" | "rr-peer" | "external" | "node-peer";
  family: Family;
  /** For rr-client: the client. */
  a: string;
  aIP: string;
  /** A node name, or the BGPPeer name of an external peer. For rr-client: the reflector. */
  b: string;
  bIP: string;
  external: boolean;
  source: string;
}

export interface TopologyProblem {
  kind: "BGPConfiguration" | "BGPPeer" | "Node";
  name: string;
  message: string;
}

export interface TopologyInput {
  config?: BGPConfiguration | BGPConfigurationSpec;
  peers?: BGPPeer[];
  nodes: TopologyNode[];
}

export interface Topology {
  asNumber: number;
  meshEnabled: boolean;
  reflectors: string[];
  /** Why each reflector reflects (annotation, or weft-controller's choice). */
  reflectorReasons: Record<string, string>;
  nodes: Record<string, NodeTopology>;
  sessions: GlobalSession[];
  problems: TopologyProblem[];
  /** Per BGPPeer: the nodes it applies to and the sessions it creates (for its status). */
  peers: Record<string, { valid: boolean; selectedNodes: string[]; expectedSessions: number }>;
}

interface Settings {
  asNumber: number;
  nodeToNodeMesh: boolean;
  meshWithReflectors: boolean;
  listenPort: number;
  gracefulRestartSeconds: number;
  keepaliveSeconds: number;
  holdSeconds: number;
  meshPassword?: SecretKeyRef;
  bfd?: { intervalMs: number; multiplier: number };
  services?: NodeServices;
  serviceNodeSelector?: LabelSelector;
  communities?: ClassCommunities;
}

/** Defaulted BFD settings, or undefined when BFD is off or the spec is invalid (reported). */
export function bfdSettings(
  spec: BFDSpec | undefined,
  field: string,
  bad: (m: string) => void,
): { intervalMs: number; multiplier: number } | undefined {
  if (spec === undefined) return undefined;
  const p = bfdProblems(spec, field);
  if (p.length) {
    p.forEach(bad);
    return undefined;
  }
  if (spec.enabled !== true) return undefined;
  return {
    intervalMs: spec.intervalMilliseconds ?? BFD_DEFAULTS.intervalMilliseconds,
    multiplier: spec.multiplier ?? BFD_DEFAULTS.multiplier,
  };
}

function cidrList(list: unknown, field: string, bad: (m: string) => void): string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) {
    bad(`${field}: must be a list of CIDRs`);
    return [];
  }
  const out: string[] = [];
  list.forEach((c, i) => {
    const p = tryParseCidr(c);
    if (!p) bad(`${field}[${i}]: ${JSON.stringify(c)} is not a CIDR with its host bits clear`);
    else if (!out.includes(formatCidr(p))) out.push(formatCidr(p));
  });
  return out;
}

function communityList(list: unknown, field: string, bad: (m: string) => void): string[] {
  const p = communityProblems(list, field);
  if (p.length) {
    p.forEach(bad);
    return [];
  }
  return [...new Set((list as string[] | undefined) ?? [])];
}

function settingsFrom(
  input: BGPConfiguration | BGPConfigurationSpec | undefined,
  problems: TopologyProblem[],
): Settings {
  const spec: BGPConfigurationSpec =
    input && "spec" in input ? (input.spec ?? {}) : ((input as BGPConfigurationSpec | undefined) ?? {});
  const name = input && "metadata" in input ? input.metadata.name : "default";
  const bad = (message: string) => problems.push({ kind: "BGPConfiguration", name, message });
  const s: Settings = {
    ...BGP_DEFAULTS,
    meshWithReflectors: false,
    communities: { blocks: [], serviceClusterIPs: [], serviceLoadBalancerIPs: [] },
  };
  if (spec.asNumber !== undefined) {
    if (isASNumber(spec.asNumber)) s.asNumber = spec.asNumber;
    else bad(`asNumber: ${JSON.stringify(spec.asNumber)} is not an AS number (1-4294967295)`);
  }
  if (spec.nodeToNodeMesh !== undefined) s.nodeToNodeMesh = spec.nodeToNodeMesh === true;
  if (spec.meshWithReflectors !== undefined) s.meshWithReflectors = spec.meshWithReflectors === true;
  if (spec.listenPort !== undefined) {
    if (isPort(spec.listenPort)) s.listenPort = spec.listenPort;
    else bad(`listenPort: ${JSON.stringify(spec.listenPort)} is not a TCP port`);
  }
  if (spec.gracefulRestartSeconds !== undefined) {
    if (isIntInRange(spec.gracefulRestartSeconds, 1, 4095))
      s.gracefulRestartSeconds = spec.gracefulRestartSeconds;
    else bad("gracefulRestartSeconds: must be an integer from 1 to 4095");
  }
  const hold = spec.holdSeconds ?? s.holdSeconds;
  const keepalive = spec.keepaliveSeconds ?? (spec.holdSeconds !== undefined ? Math.floor(hold / 3) : 30);
  if (!isIntInRange(hold, 3, 65535)) bad("holdSeconds: must be an integer from 3 to 65535");
  else if (!isIntInRange(keepalive, 1, 65535) || keepalive >= hold)
    bad("keepaliveSeconds: must be an integer of at least 1 and below holdSeconds");
  else {
    s.holdSeconds = hold;
    s.keepaliveSeconds = keepalive;
  }
  if (spec.meshPassword !== undefined) {
    const p = secretRefProblems(spec.meshPassword, "meshPassword");
    if (p.length) p.forEach(bad);
    else s.meshPassword = spec.meshPassword;
  }
  const bfd = bfdSettings(spec.bfd, "bfd", bad);
  if (bfd) s.bfd = bfd;
  const clusterIPs = cidrList(spec.serviceClusterIPs, "serviceClusterIPs", bad);
  const lbIPs = cidrList(spec.serviceLoadBalancerIPs, "serviceLoadBalancerIPs", bad);
  if (clusterIPs.length || lbIPs.length) s.services = { clusterIPs, loadBalancerIPs: lbIPs };
  const sel = selectorProblems(spec.serviceNodeSelector, "serviceNodeSelector");
  if (sel.length) {
    sel.forEach(bad);
    // an invalid selector announces Services from no node rather than from every node
    delete s.services;
  } else if (spec.serviceNodeSelector) s.serviceNodeSelector = spec.serviceNodeSelector;
  const c = spec.communities;
  if (c !== undefined && (typeof c !== "object" || c === null)) bad("communities: must be an object");
  else if (c) {
    s.communities = {
      blocks: communityList(c.blocks, "communities.blocks", bad),
      serviceClusterIPs: communityList(c.serviceClusterIPs, "communities.serviceClusterIPs", bad),
      serviceLoadBalancerIPs: communityList(
        c.serviceLoadBalancerIPs,
        "communities.serviceLoadBalancerIPs",
        bad,
      ),
    };
  }
  return s;
}

/** BIRD takes a cluster id as an IPv4-formatted 32-bit number; accept that or a plain integer. */
export function parseClusterID(v: string): string | undefined {
  const trimmed = v.trim();
  if (/^\d{1,10}$/.test(trimmed)) {
    const n = BigInt(trimmed);
    return n <= 0xffffffffn ? formatIP(4, n) : undefined;
  }
  const ip = tryCanonicalAddress(trimmed);
  return ip?.family === 4 ? ip.text : undefined;
}

function derivedRouterID(name: string): string {
  const h = createHash("sha256").update(name).digest();
  // keep it out of 0.0.0.0/8 so it never reads as "unset"
  return formatIP(4, BigInt(h.readUInt32BE(0) | 0x01000000) & 0xffffffffn);
}

interface ValidNode {
  name: string;
  labels: Record<string, string>;
  ips: Partial<Record<Family, string>>;
  clusterID?: string;
  /** Automatic reflectors: when weft-controller chose it (seniority among reflectors). */
  since?: string;
}

/** Reflector seniority: annotated ones first (by name), then automatic ones by when they were chosen. */
function seniority(a: ValidNode, b: ValidNode): number {
  const sa = a.since ?? "";
  const sb = b.since ?? "";
  if (sa !== sb) return sa < sb ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function computeTopology(input: TopologyInput): Topology {
  const problems: TopologyProblem[] = [];
  const settings = settingsFrom(input.config, problems);
  const reflectorReasons: Record<string, string> = {};
  // Reflectors weft-controller chose, while automatic reflectors are asked for.
  const automatic = new Map<string, { clusterID: string; reason: string; state: string; since: string }>();
  const cfg = input.config && "metadata" in input.config ? input.config : undefined;
  if (cfg?.spec?.routeReflectors) {
    for (const r of cfg.status?.routeReflectors ?? [])
      if (r.source === "Automatic")
        automatic.set(r.node, {
          clusterID: r.clusterID,
          reason: r.reason,
          state: r.state,
          since: r.since ?? "",
        });
  }

  const nodes: ValidNode[] = [];
  const seenNames = new Set<string>();
  const ipOwner = new Map<string, string>();
  // An address claimed by two nodes belongs to neither: we cannot tell which one is right.
  const claims = new Map<string, string[]>();
  for (const n of input.nodes) {
    for (const raw of [n.underlayIPv4, n.underlayIPv6]) {
      const ip = tryCanonicalAddress(raw);
      if (ip) claims.set(ip.text, [...(claims.get(ip.text) ?? []), n.name]);
    }
  }
  for (const n of [...input.nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const bad = (message: string) => problems.push({ kind: "Node", name: n.name, message });
    if (seenNames.has(n.name)) {
      bad("duplicate node name");
      continue;
    }
    seenNames.add(n.name);
    for (const p of n.underlayProblems ?? []) bad(p);
    const ips: Partial<Record<Family, string>> = {};
    for (const [fam, raw] of [
      [4, n.underlayIPv4],
      [6, n.underlayIPv6],
    ] as const) {
      if (raw === undefined || raw === "") continue;
      const ip = tryCanonicalAddress(raw);
      if (!ip || ip.family !== fam) bad(`underlay IPv${fam} ${JSON.stringify(raw)} is not a valid address`);
      else if ((claims.get(ip.text)?.length ?? 0) > 1)
        bad(`underlay address ${ip.text} is claimed by ${claims.get(ip.text)?.join(", ")}; not used`);
      else {
        ips[fam] = ip.text;
        ipOwner.set(ip.text, n.name);
      }
    }
    if (!ips[4] && !ips[6]) bad("no usable underlay address; the node gets no BGP sessions");
    const v: ValidNode = { name: n.name, labels: n.labels ?? {}, ips };
    const cid = n.annotations?.[ANNOTATIONS.routeReflectorClusterID];
    if (cid !== undefined) {
      const parsed = parseClusterID(cid);
      if (parsed) {
        v.clusterID = parsed;
        reflectorReasons[n.name] = `annotated ${ANNOTATIONS.routeReflectorClusterID}`;
      } else
        bad(
          `annotation ${ANNOTATIONS.routeReflectorClusterID}=${JSON.stringify(cid)} is not an IPv4-style cluster id or 32-bit number; the node is not a reflector`,
        );
    } else if (automatic.has(n.name)) {
      const a = automatic.get(n.name) as { clusterID: string; reason: string; state: string; since: string };
      const parsed = parseClusterID(a.clusterID);
      if (parsed) {
        v.clusterID = parsed;
        v.since = a.since;
        reflectorReasons[n.name] = `${a.state}: ${a.reason}`;
      }
    }
    nodes.push(v);
  }

  const reflectors = nodes.filter((n) => n.clusterID !== undefined).sort(seniority);
  const rank = new Map(reflectors.map((r, i) => [r.name, i]));
  /** Whether `self` treats `other` as a route reflector client. */
  const treatsAsClient = (self: ValidNode, other: ValidNode): boolean =>
    self.clusterID !== undefined &&
    (other.clusterID === undefined || (rank.get(self.name) ?? 0) < (rank.get(other.name) ?? 0));
  const meshEnabled = settings.nodeToNodeMesh && (reflectors.length === 0 || settings.meshWithReflectors);

  const result: Record<string, NodeTopology> = {};
  for (const n of nodes) {
    result[n.name] = {
      node: n.name,
      routerID: n.ips[4] ?? derivedRouterID(n.name),
      localAS: settings.asNumber,
      listenPort: settings.listenPort,
      gracefulRestartSeconds: settings.gracefulRestartSeconds,
      keepaliveSeconds: settings.keepaliveSeconds,
      holdSeconds: settings.holdSeconds,
      ...(n.clusterID ? { routeReflectorClusterID: n.clusterID } : {}),
      sessions: [],
      ...(settings.services && matchesSelector(settings.serviceNodeSelector, n.labels)
        ? { services: settings.services }
        : {}),
      communities: settings.communities,
    };
  }
  const global: GlobalSession[] = [];
  const taken = new Set<string>(); // `${node}|${peerIP}`

  const add = (node: string, s: TopologySession): boolean => {
    const key = `${node}|${s.peerIP}`;
    if (taken.has(key)) return false;
    taken.add(key);
    result[node]?.sessions.push(s);
    return true;
  };

  /** Both ends of a node pair, once per common family. Returns the number of new pairs. */
  const pair = (
    a: ValidNode,
    b: ValidNode,
    kindA: SessionKind,
    kindB: SessionKind,
    globalKind: GlobalSession["kind"],
    source: string,
    password: SecretKeyRef | undefined,
    bfd: TopologySession["bfd"],
  ): number => {
    let count = 0;
    for (const fam of [4, 6] as const) {
      const ipA = a.ips[fam];
      const ipB = b.ips[fam];
      if (!ipA || !ipB) continue;
      if (taken.has(`${a.name}|${ipB}`) || taken.has(`${b.name}|${ipA}`)) continue;
      const aPassive = compareIP(ipA, ipB) > 0;
      const common = {
        family: fam,
        peerAS: settings.asNumber,
        localAS: settings.asNumber,
        source,
        ...(bfd ? { bfd } : {}),
      };
      const pw = password ? { password } : {};
      add(a.name, {
        ...common,
        ...pw,
        peerName: b.name,
        peerNode: b.name,
        peerIP: ipB,
        localIP: ipA,
        kind: kindA,
        passive: aPassive,
        port: settings.listenPort,
        ...(treatsAsClient(a, b) ? { rrClient: true, rrClusterID: a.clusterID } : {}),
      });
      add(b.name, {
        ...common,
        ...pw,
        peerName: a.name,
        peerNode: a.name,
        peerIP: ipA,
        localIP: ipB,
        kind: kindB,
        passive: !aPassive,
        port: settings.listenPort,
        ...(treatsAsClient(b, a) ? { rrClient: true, rrClusterID: b.clusterID } : {}),
      });
      global.push({
        kind: globalKind,
        family: fam,
        a: a.name,
        aIP: ipA,
        b: b.name,
        bIP: ipB,
        external: false,
        source,
      });
      count++;
    }
    return count;
  };

  // Reflectors first so that their sessions win over any other way the same pair could peer.
  for (let i = 0; i < reflectors.length; i++) {
    for (let j = i + 1; j < reflectors.length; j++) {
      pair(
        reflectors[i] as ValidNode,
        reflectors[j] as ValidNode,
        "rr-peer",
        "rr-peer",
        "rr-peer",
        "route-reflector",
        settings.meshPassword,
        settings.bfd,
      );
    }
  }
  if (reflectors.length > 0) {
    for (const client of nodes) {
      if (client.clusterID !== undefined) continue;
      for (const r of reflectors) {
        pair(
          client,
          r,
          "rr-client",
          "rr-to-client",
          "rr-client",
          "route-reflector",
          settings.meshPassword,
          settings.bfd,
        );
      }
    }
  }
  if (meshEnabled) {
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        pair(
          nodes[i] as ValidNode,
          nodes[j] as ValidNode,
          "mesh",
          "mesh",
          "mesh",
          "mesh",
          settings.meshPassword,
          settings.bfd,
        );
      }
    }
  }

  const peers: Topology["peers"] = {};
  const sortedPeers = [...(input.peers ?? [])].sort((a, b) =>
    a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0,
  );
  // node peers before external peers: the dedup order above
  const ordered = [
    ...sortedPeers.filter((p) => p.spec?.peerSelector !== undefined),
    ...sortedPeers.filter((p) => p.spec?.peerSelector === undefined),
  ];
  for (const peer of ordered) {
    const name = peer.metadata.name;
    const errs = peerProblems(peer, settings.asNumber, ipOwner);
    if (errs.length) {
      for (const message of errs) problems.push({ kind: "BGPPeer", name, message });
      peers[name] = { valid: false, selectedNodes: [], expectedSessions: 0 };
      continue;
    }
    const spec = peer.spec;
    const selected = nodes.filter((n) =>
      spec.node !== undefined ? n.name === spec.node : matchesSelector(spec.nodeSelector, n.labels),
    );
    const source = `BGPPeer/${name}`;
    const bfd = bfdSettings(spec.bfd, "bfd", () => undefined);
    let expected = 0;
    if (spec.peerSelector !== undefined) {
      const targets = nodes.filter((n) => matchesSelector(spec.peerSelector, n.labels));
      const done = new Set<string>();
      for (const a of selected) {
        for (const b of targets) {
          if (a.name === b.name) continue;
          const k = a.name < b.name ? `${a.name}|${b.name}` : `${b.name}|${a.name}`;
          if (done.has(k)) continue;
          done.add(k);
          expected += pair(a, b, "node-peer", "node-peer", "node-peer", source, spec.password, bfd);
        }
      }
    } else {
      const ip = tryCanonicalAddress(spec.peerIP) as CanonicalAddress;
      for (const n of selected) {
        const local = n.ips[ip.family];
        if (!local) {
          problems.push({
            kind: "BGPPeer",
            name,
            message: `node ${n.name} has no IPv${ip.family} underlay address to reach ${ip.text}`,
          });
          continue;
        }
        const ok = add(n.name, {
          peerName: name,
          peerIP: ip.text,
          localIP: local,
          family: ip.family,
          peerAS: spec.asNumber as number,
          localAS: settings.asNumber,
          kind: "external",
          passive: false,
          port: spec.port ?? 179,
          source,
          ...(spec.password ? { password: spec.password } : {}),
          ...(bfd ? { bfd } : {}),
          ...(spec.communities?.length ? { communities: [...new Set(spec.communities)] } : {}),
          ...(spec.asNumber === settings.asNumber ? { importPools: true } : {}),
        });
        if (!ok) {
          problems.push({
            kind: "BGPPeer",
            name,
            message: `node ${n.name} already has a session to ${ip.text}`,
          });
          continue;
        }
        global.push({
          kind: "external",
          family: ip.family,
          a: n.name,
          aIP: local,
          b: name,
          bIP: ip.text,
          external: true,
          source,
        });
        expected++;
      }
    }
    peers[name] = { valid: true, selectedNodes: selected.map((n) => n.name), expectedSessions: expected };
  }

  return {
    asNumber: settings.asNumber,
    meshEnabled,
    reflectors: reflectors.map((r) => r.name),
    reflectorReasons,
    nodes: result,
    sessions: global,
    problems,
    peers,
  };
}

function peerProblems(peer: BGPPeer, clusterAS: number, nodeIPs: Map<string, string>): string[] {
  const spec = peer.spec as BGPPeer["spec"] | undefined;
  if (!spec || typeof spec !== "object") return ["spec: missing"];
  const out: string[] = [];
  const hasIP = spec.peerIP !== undefined;
  const hasSel = spec.peerSelector !== undefined;
  if (hasIP === hasSel) out.push("exactly one of peerIP and peerSelector must be set");
  if (spec.node !== undefined && spec.nodeSelector !== undefined)
    out.push("at most one of node and nodeSelector may be set");
  if (spec.node !== undefined && (typeof spec.node !== "string" || spec.node === ""))
    out.push("node: must be a node name");
  out.push(...selectorProblems(spec.nodeSelector, "nodeSelector"));
  out.push(...selectorProblems(spec.peerSelector, "peerSelector"));
  out.push(...secretRefProblems(spec.password, "password"));
  out.push(...bfdProblems(spec.bfd, "bfd"));
  out.push(...communityProblems(spec.communities, "communities"));
  if (hasIP) {
    const ip = tryCanonicalAddress(spec.peerIP);
    if (!ip) out.push(`peerIP: ${JSON.stringify(spec.peerIP)} is not an IP address`);
    else if (nodeIPs.has(ip.text))
      out.push(`peerIP: ${ip.text} is node ${nodeIPs.get(ip.text)}; use peerSelector to peer with nodes`);
    if (spec.asNumber === undefined) out.push("asNumber: required with peerIP");
    else if (!isASNumber(spec.asNumber))
      out.push(`asNumber: ${JSON.stringify(spec.asNumber)} is not an AS number (1-4294967295)`);
    if (spec.port !== undefined && !isPort(spec.port))
      out.push(`port: ${JSON.stringify(spec.port)} is not a TCP port`);
  } else if (hasSel && spec.asNumber !== undefined && spec.asNumber !== clusterAS) {
    out.push(`asNumber: nodes selected by peerSelector are in AS ${clusterAS}; leave asNumber unset`);
  }
  return out;
}

/**
 * When a node may restart BIRD gracefully after a change every node sees at once, in turns of a
 * few seconds (pure). Two neighbours must not restart together: each would come back to a peer
 * still recovering and a route could go missing. Reflectors go one by one, senior first; then every
 * client together (clients of reflectors do not peer with each other); in a mesh every node has
 * its own turn, by name.
 */
export function gracefulRestartTurn(topology: Topology, node: string): number {
  const r = topology.reflectors.indexOf(node);
  if (r >= 0) return r;
  if (topology.reflectors.length > 0) return topology.reflectors.length;
  const names = Object.keys(topology.nodes).sort();
  return Math.max(0, names.indexOf(node));
}
