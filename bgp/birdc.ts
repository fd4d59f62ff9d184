import type { BGPSessionStatus } from "../api/index.js";
import type { RenderedProtocol } from "./render.js";

/**
 * Parses `birdc show protocols [all]` output (BIRD 2, with `timeformat protocol iso long`) into
 * data (pure). Unknown lines are ignored so that a newer BIRD adding fields does not break status.
 */

export interface BirdChannel {
  name: string;
  state?: string;
  imported: number;
  exported: number;
  preferred: number;
}

export interface BirdProtocol {
  name: string;
  proto: string;
  table: string;
  /** Protocol state: up, start, down, flush... */
  state: string;
  /** As printed (BIRD's local time). */
  since: string;
  info: string;
  description?: string;
  bgpState?: string;
  neighborAddress?: string;
  neighborAS?: number;
  localAS?: number;
  lastError?: string;
  channels: BirdChannel[];
}

const SINCE = String.raw`(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?|[\d:.-]+)`;
const HEADER = new RegExp(
  String.raw`^(\S+)\s+(\S+)\s+(\S+)\s+(up|down|start|stop|flush)\s+${SINCE}(?:\s+(.*))?$`,
);

export function parseShowProtocols(text: string): BirdProtocol[] {
  const out: BirdProtocol[] = [];
  let cur: BirdProtocol | undefined;
  let channel: BirdChannel | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\s+$/, "");
    if (line === "") continue;
    if (/^BIRD \S+ ready\.$/.test(line) || /^Name\s+Proto\s+Table\s+State\s+Since/.test(line)) continue;
    if (!/^\s/.test(line)) {
      const m = HEADER.exec(line);
      if (!m) {
        cur = undefined;
        continue;
      }
      cur = {
        name: m[1] as string,
        proto: m[2] as string,
        table: m[3] as string,
        state: m[4] as string,
        since: m[5] as string,
        info: (m[6] ?? "").trim(),
        channels: [],
      };
      channel = undefined;
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    const trimmed = line.trim();
    const ch = /^Channel (\S+)$/.exec(trimmed);
    if (ch) {
      channel = { name: ch[1] as string, imported: 0, exported: 0, preferred: 0 };
      cur.channels.push(channel);
      continue;
    }
    const kv = /^([A-Za-z][A-Za-z0-9 ]*?):\s+(.*)$/.exec(trimmed);
    if (!kv) continue;
    const key = kv[1] as string;
    const value = (kv[2] as string).trim();
    switch (key) {
      case "Description":
        cur.description = value;
        break;
      case "BGP state":
        cur.bgpState = value;
        break;
      case "Neighbor address":
        cur.neighborAddress = value.split(/\s|%/)[0];
        break;
      case "Neighbor AS":
        cur.neighborAS = Number(value);
        break;
      case "Local AS":
        cur.localAS = Number(value);
        break;
      case "Last error":
        cur.lastError = value;
        break;
      case "State":
        if (channel) channel.state = value;
        break;
      case "Routes": {
        if (!channel) break;
        const num = (what: string) => Number(new RegExp(String.raw`(\d+) ${what}`).exec(value)?.[1] ?? 0);
        channel.imported = num("imported");
        channel.exported = num("exported");
        channel.preferred = num("preferred");
        break;
      }
    }
  }
  return out;
}

export interface BfdSession {
  address: string;
  /** Up, Down, Init or AdminDown. */
  state: string;
}

/**
 * Parses `birdc show bfd sessions` (BIRD 2): under each BFD protocol's name, one line per
 * neighbor: address, interface, state, since, interval, timeout.
 */
export function parseShowBfdSessions(text: string): BfdSession[] {
  const out: BfdSession[] = [];
  for (const raw of text.split("\n")) {
    const m = /^([0-9a-fA-F:.]+)\s+\S+\s+(Up|Down|Init|AdminDown)\s/.exec(raw.trim());
    if (m) out.push({ address: m[1] as string, state: m[2] as string });
  }
  return out;
}

/** BIRD prints local time; make it an ISO timestamp when it is a full date and time. */
function sinceISO(since: string): string {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)$/.exec(since);
  if (!m) return since;
  const d = new Date(`${m[1]}T${m[2]}`);
  return Number.isNaN(d.getTime()) ? since : d.toISOString();
}

/**
 * Session status for NodeNetworkStatus from the BGP protocols BIRD reports. With the rendering's
 * protocol list, names and addresses come from Weft's own data (only rendered sessions are
 * reported); without it, from what BIRD prints.
 */
export function sessionStatuses(
  protocols: BirdProtocol[],
  rendered?: RenderedProtocol[],
  bfd?: BfdSession[],
): BGPSessionStatus[] {
  const byName = new Map(rendered?.map((r) => [r.name, r]));
  const bfdState = new Map(bfd?.map((b) => [b.address, b.state]));
  const out: BGPSessionStatus[] = [];
  for (const p of protocols) {
    if (p.proto !== "BGP") continue;
    const r = byName.get(p.name);
    if (rendered && !r) continue;
    const state =
      p.bgpState ?? (p.state === "up" ? "Established" : (p.info.split(/\s+/)[0] ?? "") || p.state);
    const info = p.lastError ?? (p.info.replace(/^\S+\s*/, "") || undefined);
    const s: BGPSessionStatus = {
      peer: r?.session.peerName ?? p.description ?? p.name,
      peerIP: r?.session.peerIP ?? p.neighborAddress ?? "",
      asNumber: r?.session.peerAS ?? p.neighborAS ?? 0,
      state,
      since: sinceISO(p.since),
      routesImported: p.channels.reduce((n, c) => n + c.imported, 0),
      routesExported: p.channels.reduce((n, c) => n + c.exported, 0),
    };
    if (info) s.info = info;
    if (r?.session.bfd) s.bfd = bfdState.get(s.peerIP) ?? "Down";
    if (r) s.source = r.session.source;
    out.push(s);
  }
  return out;
}
