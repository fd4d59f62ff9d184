import { createHash } from "node:crypto";
import {
  type Cidr,
  cidrContains,
  type Family,
  formatCidr,
  tryCanonicalAddress,
  tryParseCidr,
} from "../net/index.js";
import type { NodeTopology, TopologySession } from "./topology.js";
import { BFD_LIMITS, isASNumber, isIntInRange, isPort, parseCommunity, secretRefKey } from "./validate.js";

/**
 * Renders bird.conf (BIRD 2) for one node from its topology (pure).
 *
 * Safety: nothing user-supplied reaches the file as text except through a validator that admits
 * only a known-safe alphabet: addresses are re-parsed and printed canonically, numbers are
 * checked integers, protocol names are derived from a hash, descriptions appear only when they
 * are plain DNS names, and passwords are refused when they hold anything a BIRD string cannot
 * hold literally (BIRD 2 strings have no escape sequences: a quote or newline would end them).
 *
 * Routing policy:
 * - a static protocol holds one blackhole per own block; sessions to ordinary peers export only
 *   that protocol's routes (own blocks only);
 * - reflectors (towards clients and other reflectors) and external peers also pass on routes
 *   learned over BGP inside the pool CIDRs, so that a reflector reflects and an external router
 *   can learn the whole cluster from any node it peers with;
 * - from nodes, routes inside the pools (all routes when no pools are given) except our own blocks
 *   are imported; from external peers nothing is imported;
 * - only BGP-learned routes go to the kernel (the agent owns the blackholes), marked with
 *   ROUTE_PROTOCOL_BGP;
 * - Service ranges and LoadBalancer addresses are static routes that go to external peers only
 *   (never to nodes, never to the kernel), with the communities of their prefix class and of the
 *   peer; an external peer in the nodes' own AS (a reflector) also gives routes inside the pools.
 * - BFD, where asked for, is one `bfd` protocol plus per-session intervals.
 */

/**
 * Route protocol number of the kernel routes BIRD installs. BIRD 2 writes every route with
 * RTPROT_BIRD (12) and has no option to choose another number (sysdep/linux/netlink.c sets
 * rtm_protocol unconditionally), so this is Weft's BGP route protocol. The agent's own routes use
 * a different number (0x57); nothing else on a node should write protocol 12 unless it is a BIRD.
 */
export const ROUTE_PROTOCOL_BGP = 12;

/** Longest key the kernel's TCP MD5 option takes (TCP_MD5SIG_MAXKEYLEN). */
export const MAX_PASSWORD_BYTES = 80;

export interface RenderInput {
  node: NodeTopology;
  /** This node's own blocks (CIDRs). */
  blocks: string[];
  /** The pools' CIDRs: what may be reflected, passed on to external peers and imported. */
  poolCIDRs?: string[];
  /** Passwords by secretRefKey(ref), as the agent read them from Secrets. */
  passwords?: Record<string, string>;
  /** Kernel and device scan period, seconds (default 10). */
  scanSeconds?: number;
  /**
   * LoadBalancer ingress addresses this node announces one by one (host routes), besides the
   * ranges in node.services. Addresses outside node.services.loadBalancerIPs are left out.
   */
  loadBalancerIngress?: string[];
}

export interface RenderedProtocol {
  /** BIRD protocol name (what `birdc show protocols` prints). */
  name: string;
  session: TopologySession;
}

/**
 * Per BGP protocol of a rendered configuration, what BIRD can change on a running session only by
 * restarting it and what a node changes when it becomes or stops being a reflector (`rr client`,
 * its cluster id) or when BFD is turned on. A reconfigure would send the peer a Cease and the peer
 * would drop the routes at once; a graceful restart of BIRD makes the peers keep them instead.
 */
export function roleKeys(config: string): Map<string, string> {
  const out = new Map<string, string>();
  let name: string | undefined;
  let key: string[] = [];
  for (const line of config.split("\n")) {
    const start = /^protocol bgp (\S+) from weft_session \{$/.exec(line);
    if (start) {
      name = start[1] as string;
      key = [];
    } else if (name !== undefined && line === "}") {
      out.set(name, key.join(" ") || "plain");
      name = undefined;
    } else if (name !== undefined && /^ {2}(rr client|rr cluster id \S+|bfd \{.*\});$/.test(line))
      key.push(line.trim());
  }
  return out;
}

/**
 * The sessions (protocol names) that both configurations hold with a different role key: BIRD would
 * restart them on `configure`, so the new configuration should be applied by a graceful restart.
 */
export function roleChanges(oldConfig: string | undefined, newConfig: string): string[] {
  if (!oldConfig) return [];
  const before = roleKeys(oldConfig);
  const out: string[] = [];
  for (const [name, key] of roleKeys(newConfig)) {
    const was = before.get(name);
    if (was !== undefined && was !== key) out.push(name);
  }
  return out;
}

export interface RenderProblem {
  peerName: string;
  peerIP: string;
  message: string;
}

export interface RenderResult {
  config: string;
  protocols: RenderedProtocol[];
  /** Sessions left out or values ignored, with why; never contains a password. */
  problems: RenderProblem[];
}

const SAFE_DESCRIPTION = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Why a password cannot go into bird.conf, or undefined when it can. */
export function passwordProblem(pw: unknown): string | undefined {
  if (typeof pw !== "string" || pw.length === 0) return "password is empty";
  if (Buffer.byteLength(pw, "utf8") > MAX_PASSWORD_BYTES)
    return `password is longer than ${MAX_PASSWORD_BYTES} bytes (the kernel's TCP MD5 key limit)`;
  if (pw.includes('"')) return "password contains a double quote, which a BIRD 2 string cannot hold";
  if (/[\u0000-\u001f\u007f]/.test(pw))
    return "password contains a control character (newline, tab, NUL...), which BIRD cannot hold";
  return undefined;
}

/**
 * Stable protocol name: the same peer keeps its name across renderings, so reloads keep it up. A
 * node has at most one session per peer node address, so node-to-node sessions are named by that
 * address alone: a mesh session that becomes a reflector session stays the same protocol.
 */
export function protocolName(s: TopologySession): string {
  if (s.kind === "external") {
    const h = createHash("sha256").update(`${s.source}\n${s.peerIP}`).digest("hex").slice(0, 12);
    return `peer_${h}`;
  }
  const h = createHash("sha256").update(`node\n${s.peerIP}`).digest("hex").slice(0, 12);
  return `node_${h}`;
}

function communityStatements(list: readonly string[] | undefined): string {
  const out: string[] = [];
  for (const c of list ?? []) {
    const p = parseCommunity(c);
    if (p) out.push(`bgp_community.add((${p[0]},${p[1]}));`);
  }
  return out.join(" ");
}

function famSuffix(f: Family): string {
  return f === 4 ? "4" : "6";
}

function prefixSet(cidrs: string[], orLonger: boolean): string {
  return `[ ${cidrs.map((c) => (orLonger ? `${c}+` : c)).join(", ")} ]`;
}

export function renderBirdConfig(input: RenderInput): RenderResult {
  const { node } = input;
  const problems: RenderProblem[] = [];
  const routerID = tryCanonicalAddress(node.routerID);
  if (routerID?.family !== 4) throw new Error(`router id ${JSON.stringify(node.routerID)} is not IPv4`);
  if (!isASNumber(node.localAS)) throw new Error(`local AS ${JSON.stringify(node.localAS)} is out of range`);
  if (!isPort(node.listenPort)) throw new Error(`listen port ${JSON.stringify(node.listenPort)} is invalid`);
  const hold = isIntInRange(node.holdSeconds, 3, 65535) ? node.holdSeconds : 90;
  const keepalive =
    isIntInRange(node.keepaliveSeconds, 1, 65535) && node.keepaliveSeconds < hold
      ? node.keepaliveSeconds
      : Math.max(1, Math.floor(hold / 3));
  const grTime = isIntInRange(node.gracefulRestartSeconds, 1, 4095) ? node.gracefulRestartSeconds : 120;
  const scan = isIntInRange(input.scanSeconds, 1, 3600) ? input.scanSeconds : 10;

  const blocks: Record<Family, string[]> = { 4: [], 6: [] };
  for (const b of input.blocks) {
    const c = tryParseCidr(b);
    if (!c) throw new Error(`own block ${JSON.stringify(b)} is not a CIDR`);
    const text = formatCidr(c);
    if (!blocks[c.family].includes(text)) blocks[c.family].push(text);
  }
  const pools: Record<Family, string[]> = { 4: [], 6: [] };
  for (const p of input.poolCIDRs ?? []) {
    const c = tryParseCidr(p);
    if (!c) throw new Error(`pool ${JSON.stringify(p)} is not a CIDR`);
    const text = formatCidr(c);
    if (!pools[c.family].includes(text)) pools[c.family].push(text);
  }

  const services: Record<"cluster" | "lb", Record<Family, string[]>> = {
    cluster: { 4: [], 6: [] },
    lb: { 4: [], 6: [] },
  };
  const lbRanges: Cidr[] = [];
  for (const [cls, list] of [
    ["cluster", node.services?.clusterIPs ?? []],
    ["lb", node.services?.loadBalancerIPs ?? []],
  ] as const) {
    for (const x of list) {
      const c = tryParseCidr(x);
      if (!c) throw new Error(`Service range ${JSON.stringify(x)} is not a CIDR`);
      if (cls === "lb") lbRanges.push(c);
      const text = formatCidr(c);
      if (!services[cls][c.family].includes(text)) services[cls][c.family].push(text);
    }
  }
  for (const raw of node.services ? (input.loadBalancerIngress ?? []) : []) {
    const ip = tryCanonicalAddress(raw);
    if (!ip) continue;
    const host = `${ip.text}/${ip.family === 4 ? 32 : 128}`;
    if (lbRanges.some((r) => cidrContains(r, ip)) && !services.lb[ip.family].includes(host))
      services.lb[ip.family].push(host);
  }

  // Sessions that survive validation, by family.
  const accepted: Array<{ s: TopologySession; name: string; password?: string }> = [];
  const names = new Set<string>();
  for (const s of node.sessions) {
    const bad = (message: string) => problems.push({ peerName: s.peerName, peerIP: s.peerIP, message });
    const peerIP = tryCanonicalAddress(s.peerIP);
    const localIP = tryCanonicalAddress(s.localIP);
    if (!peerIP || !localIP || peerIP.family !== localIP.family) {
      bad("peer or local address is not a valid address of one family");
      continue;
    }
    if (!isASNumber(s.peerAS) || !isASNumber(s.localAS)) {
      bad("AS number out of range");
      continue;
    }
    if (!isPort(s.port)) {
      bad("peer port out of range");
      continue;
    }
    let password: string | undefined;
    if (s.password) {
      const pw = input.passwords?.[secretRefKey(s.password)];
      if (pw === undefined) {
        bad(`password Secret ${secretRefKey(s.password)} is not available; session left out`);
        continue;
      }
      const why = passwordProblem(pw);
      if (why) {
        bad(`${why}; session left out`);
        continue;
      }
      password = pw;
    }
    const name = protocolName(s);
    if (names.has(name)) {
      bad("duplicate session to the same peer; left out");
      continue;
    }
    names.add(name);
    accepted.push({
      s: { ...s, peerIP: peerIP.text, localIP: localIP.text },
      name,
      ...(password ? { password } : {}),
    });
  }

  const families = new Set<Family>();
  for (const f of [4, 6] as const) if (blocks[f].length) families.add(f);
  for (const a of accepted) families.add(a.s.family);

  const L: string[] = [];
  L.push("# Rendered by weft-agent. Do not edit: it is rewritten on every change.");
  L.push(`router id ${routerID.text};`);
  L.push("timeformat protocol iso long;");
  L.push("timeformat base iso long;");
  L.push("log stderr { info, remote, warning, error, auth, fatal, bug };");
  // bounds graceful restart recovery (bird -R after a crash): stale kernel routes go after this
  L.push(`graceful restart wait ${Math.max(grTime, 30)};`);
  L.push("");
  L.push(`protocol device { scan time ${scan}; }`);
  L.push("");
  // Interface routes let recursive next hops resolve; they are never exported anywhere.
  if (accepted.some((a) => a.s.bfd)) {
    // sessions ask for BFD with their own intervals; this protocol only has to exist
    L.push("protocol bfd weft_bfd {");
    L.push("}");
    L.push("");
  }
  L.push("protocol direct weft_direct {");
  for (const f of [4, 6] as const) if (families.has(f)) L.push(`  ipv${f} { import all; export none; };`);
  L.push('  interface "*";');
  L.push("}");

  for (const f of [4, 6] as const) {
    if (!families.has(f)) continue;
    const x = famSuffix(f);
    L.push("");
    L.push(`protocol kernel weft_kernel${x} {`);
    L.push(`  ipv${f} {`);
    L.push("    import none;");
    // Nothing learned over BGP ever lands on this node's own blocks. Checked here rather than in
    // the BGP import filter: a new block then changes one kernel channel, where an import filter
    // change reloads every BGP channel and asks every peer to refresh (bench/bgp: 1.6-2.9 s
    // from a new block to BIRD reconfigured with 49 peers, 0.1 s with 2).
    if (blocks[f].length)
      L.push(
        `    export filter { if source != RTS_BGP then reject; if net ~ ${prefixSet(blocks[f], true)} then reject; accept; };`,
      );
    else L.push("    export filter { if source = RTS_BGP then accept; reject; };");
    L.push("  };");
    L.push("  persist;");
    L.push("  graceful restart;");
    L.push(`  scan time ${scan};`);
    L.push("}");
    L.push("");
    L.push(`protocol static weft_blocks${x} {`);
    L.push(`  ipv${f};`);
    for (const b of blocks[f]) L.push(`  route ${b} blackhole;`);
    L.push("}");
    L.push("");
    L.push(`filter weft_export_own${x} {`);
    L.push(`  if proto = "weft_blocks${x}" then accept;`);
    L.push("  reject;");
    L.push("}");
    L.push(`filter weft_export_cluster${x} {`);
    L.push(`  if proto = "weft_blocks${x}" then accept;`);
    if (pools[f].length) L.push(`  if source = RTS_BGP && net ~ ${prefixSet(pools[f], true)} then accept;`);
    else L.push("  if source = RTS_BGP then accept;");
    L.push("  reject;");
    L.push("}");
    for (const [cls, pname] of [
      ["cluster", `weft_svc_cluster${x}`],
      ["lb", `weft_svc_lb${x}`],
    ] as const) {
      if (!services[cls][f].length) continue;
      L.push(`protocol static ${pname} {`);
      L.push(`  ipv${f};`);
      for (const c of services[cls][f]) L.push(`  route ${c} blackhole;`);
      L.push("}");
    }
    L.push(`filter weft_import${x} {`);
    if (pools[f].length) L.push(`  if ! (net ~ ${prefixSet(pools[f], true)}) then reject;`);
    L.push("  accept;");
    L.push("}");
  }

  L.push("");
  L.push("template bgp weft_session {");
  L.push(`  hold time ${hold};`);
  L.push(`  keepalive time ${keepalive};`);
  L.push("  graceful restart on;");
  L.push(`  graceful restart time ${grTime};`);
  L.push("  connect delay time 1;");
  L.push("  connect retry time 5;");
  L.push("  error wait time 1, 30;");
  L.push("}");

  for (const { s, name, password } of accepted) {
    const x = famSuffix(s.family);
    const reflecting = s.rrClient === true;
    const exportFilter =
      s.kind === "external" ? "" : reflecting ? `weft_export_cluster${x}` : `weft_export_own${x}`;
    L.push("");
    L.push(`protocol bgp ${name} from weft_session {`);
    if (SAFE_DESCRIPTION.test(s.peerName)) L.push(`  description "${s.peerName}";`);
    L.push(`  local ${s.localIP} port ${node.listenPort} as ${s.localAS};`);
    L.push(`  neighbor ${s.peerIP} port ${s.port} as ${s.peerAS};`);
    if (s.passive) L.push("  passive on;");
    if (s.rrClient) {
      const cid = s.rrClusterID ? tryCanonicalAddress(s.rrClusterID) : undefined;
      L.push("  rr client;");
      if (cid?.family === 4) L.push(`  rr cluster id ${cid.text};`);
    }
    if (password !== undefined) L.push(`  password "${password}";`);
    if (s.bfd) {
      const iv = isIntInRange(s.bfd.intervalMs, BFD_LIMITS.minIntervalMs, BFD_LIMITS.maxIntervalMs)
        ? s.bfd.intervalMs
        : 300;
      const mult = isIntInRange(s.bfd.multiplier, BFD_LIMITS.minMultiplier, BFD_LIMITS.maxMultiplier)
        ? s.bfd.multiplier
        : 3;
      L.push(`  bfd { interval ${iv} ms; multiplier ${mult}; };`);
    }
    L.push(`  ipv${s.family} {`);
    const learns = s.kind !== "external" || s.importPools === true;
    if (learns) L.push(`    import filter weft_import${x};`);
    else L.push("    import none;");
    if (s.kind === "external") {
      // per peer: the communities of each prefix class plus the peer's own
      const tag = (cls: readonly string[]) => {
        const st = communityStatements([...cls, ...(s.communities ?? [])]);
        return st ? `{ ${st} accept; }` : "accept;";
      };
      const lines = [`if proto = "weft_blocks${x}" then ${tag(node.communities?.blocks ?? [])}`];
      const inPools = pools[s.family].length ? ` && net ~ ${prefixSet(pools[s.family], true)}` : "";
      lines.push(`if source = RTS_BGP${inPools} then ${tag(node.communities?.blocks ?? [])}`);
      if (services.cluster[s.family].length)
        lines.push(
          `if proto = "weft_svc_cluster${x}" then ${tag(node.communities?.serviceClusterIPs ?? [])}`,
        );
      if (services.lb[s.family].length)
        lines.push(
          `if proto = "weft_svc_lb${x}" then ${tag(node.communities?.serviceLoadBalancerIPs ?? [])}`,
        );
      L.push("    export filter {");
      for (const l of lines) L.push(`      ${l}`);
      L.push("      reject;");
      L.push("    };");
    } else L.push(`    export filter ${exportFilter};`);
    if (learns) L.push("    gateway recursive;");
    L.push("  };");
    L.push("}");
  }
  L.push("");

  return { config: L.join("\n"), protocols: accepted.map(({ s, name }) => ({ name, session: s })), problems };
}
