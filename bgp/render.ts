import { createHash } from "node:crypto";
import { type Family, formatCidr, tryCanonicalAddress, tryParseCidr } from "../net/index.js";
import type { NodeTopology, TopologySession } from "./topology.js";
import { isASNumber, isIntInRange, isPort, secretRefKey } from "./validate.js";

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
 *   ROUTE_PROTOCOL_BGP.
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
}

export interface RenderedProtocol {
  /** BIRD protocol name (what `birdc show protocols` prints). */
  name: string;
  session: TopologySession;
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

/** Stable protocol name: the same peer keeps its name across renderings, so reloads keep it up. */
export function protocolName(s: TopologySession): string {
  const prefix =
    s.kind === "mesh" ? "mesh" : s.kind === "external" ? "peer" : s.kind === "node-peer" ? "node" : "rr";
  const h = createHash("sha256").update(`${s.source}\n${s.peerIP}`).digest("hex").slice(0, 12);
  return `${prefix}_${h}`;
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
    const reflecting = s.kind === "rr-to-client" || s.kind === "rr-peer";
    const exportFilter =
      reflecting || s.kind === "external" ? `weft_export_cluster${x}` : `weft_export_own${x}`;
    L.push("");
    L.push(`protocol bgp ${name} from weft_session {`);
    if (SAFE_DESCRIPTION.test(s.peerName)) L.push(`  description "${s.peerName}";`);
    L.push(`  local ${s.localIP} port ${node.listenPort} as ${s.localAS};`);
    L.push(`  neighbor ${s.peerIP} port ${s.port} as ${s.peerAS};`);
    if (s.passive) L.push("  passive on;");
    if (s.kind === "rr-to-client") {
      const cid = s.rrClusterID ? tryCanonicalAddress(s.rrClusterID) : undefined;
      L.push("  rr client;");
      if (cid?.family === 4) L.push(`  rr cluster id ${cid.text};`);
    }
    if (password !== undefined) L.push(`  password "${password}";`);
    L.push(`  ipv${s.family} {`);
    if (s.kind === "external") L.push("    import none;");
    else L.push(`    import filter weft_import${x};`);
    L.push(`    export filter ${exportFilter};`);
    if (s.kind !== "external") L.push("    gateway recursive;");
    L.push("  };");
    L.push("}");
  }
  L.push("");

  return { config: L.join("\n"), protocols: accepted.map(({ s, name }) => ({ name, session: s })), problems };
}
