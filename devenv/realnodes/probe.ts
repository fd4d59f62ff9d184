/**
 * What the traffic probes of the fault suite measure, as pure bookkeeping: per path (one source
 * pod to one target pod) the ICMP echo replies that came back or did not, and a TCP connection
 * held open with a numbered line echoed every interval. Times are milliseconds on the prober's
 * clock; nothing here reads a clock or does I/O.
 */

/** One direction of one path, as the prober reports it (cumulative since the start). */
export interface PathStats {
  /** The source pod's address and the target's. */
  from: string;
  to: string;
  icmp: {
    /** Echo requests whose fate is known (sent more than the in-flight window ago). */
    sent: number;
    received: number;
    lost: number;
    /** Longest time without a reply, an ongoing outage included (ms). */
    longestGapMs: number;
  };
  tcp: {
    /** Echoes received over the held connection(s). */
    echoes: number;
    /** Times the connection was reset or closed (a dataplane that drops a flow long enough breaks it). */
    breaks: number;
    /** Whether a connection is up at this moment. */
    up: boolean;
    longestGapMs: number;
    lastError?: string;
  };
}

/**
 * Echo requests sent within this many intervals of the last one seen are still in flight: not
 * counted as lost yet, nor as sent.
 */
export const IN_FLIGHT_INTERVALS = 5;

/**
 * The replies of one `ping` (iputils, with -D for receive timestamps and -O to report unanswered
 * requests). Sequence numbers count from 1; the highest one seen bounds what was sent.
 */
export class IcmpTracker {
  private readonly replied = new Set<number>();
  private highestSeq = 0;
  private transmitted: number | undefined;
  private lastReplyAt: number | undefined;
  private longestGapMs = 0;

  constructor(private readonly startedAt: number) {}

  /** One line of ping's output; `at` is when it was read (used when the line has no timestamp). */
  onLine(line: string, at: number): void {
    const seq = /icmp_seq=(\d+)/.exec(line);
    const summary = /^(\d+) packets transmitted/.exec(line.trim());
    if (summary) {
      this.transmitted = Number(summary[1]);
      return;
    }
    if (!seq) return;
    const n = Number(seq[1]);
    this.highestSeq = Math.max(this.highestSeq, n);
    // "64 bytes from A: icmp_seq=N ..." is a reply; "no answer yet", "Destination Host
    // Unreachable" and "Redirect" lines only tell that N was sent.
    if (!/ bytes from /.test(line) || this.replied.has(n)) return;
    this.replied.add(n);
    const stamp = /^\[(\d+\.\d+)\]/.exec(line.trim());
    const t = stamp ? Number(stamp[1]) * 1000 : at;
    this.gapUntil(t);
    this.lastReplyAt = t;
  }

  /** Gaps count from the first reply on: how long a path takes to answer first is not an outage. */
  private gapUntil(t: number): void {
    if (this.lastReplyAt !== undefined) this.longestGapMs = Math.max(this.longestGapMs, t - this.lastReplyAt);
  }

  /** The counts so far; `now` closes an ongoing gap. */
  snapshot(now: number): PathStats["icmp"] {
    // after ping's summary every sequence number up to `transmitted` has its answer or never will
    const known =
      this.transmitted !== undefined
        ? Math.max(0, this.transmitted - IN_FLIGHT_INTERVALS)
        : Math.max(0, this.highestSeq - IN_FLIGHT_INTERVALS);
    let received = 0;
    for (const n of this.replied) if (n <= known) received++;
    const open = this.transmitted === undefined ? now - (this.lastReplyAt ?? this.startedAt) : 0;
    return {
      sent: known,
      received,
      lost: known - received,
      longestGapMs: Math.round(Math.max(this.longestGapMs, open)),
    };
  }
}

/**
 * A TCP connection held open to the target's echo server: a numbered line every interval, the
 * echo timed on arrival. A break is counted and the connection made again, so the gap of a
 * recovered path is still measured.
 */
export class TcpTracker {
  private echoes = 0;
  private breaks = 0;
  private up = false;
  private lastEchoAt: number | undefined;
  private longestGapMs = 0;
  private lastError: string | undefined;
  private stoppedAt: number | undefined;

  constructor(private readonly startedAt: number) {}

  onConnect(): void {
    this.up = true;
  }

  /** Gaps count from the first echo on, as for ICMP. */
  onEcho(at: number): void {
    this.echoes++;
    if (this.lastEchoAt !== undefined) this.longestGapMs = Math.max(this.longestGapMs, at - this.lastEchoAt);
    this.lastEchoAt = at;
  }

  /** The connection ended (reset, refused, timed out, closed by the peer). */
  onClose(error: string | undefined): void {
    if (this.up) this.breaks++;
    this.up = false;
    if (error) this.lastError = error;
  }

  /** The measurement ends here (the prober stops sending): later snapshots add no open gap. */
  stop(at: number): void {
    this.stoppedAt ??= at;
  }

  snapshot(now: number): PathStats["tcp"] {
    const open = Math.min(now, this.stoppedAt ?? now) - (this.lastEchoAt ?? this.startedAt);
    return {
      echoes: this.echoes,
      breaks: this.breaks,
      up: this.up,
      longestGapMs: Math.round(Math.max(this.longestGapMs, open)),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }
}

/** A line of the echo protocol: the sequence number. Lines are kept tiny: one segment each. */
export function echoLine(seq: number): string {
  return `${seq}\n`;
}

/** Splits received text into complete lines, keeping a partial tail for the next chunk. */
export function splitLines(buffered: string, chunk: string): { lines: string[]; rest: string } {
  const parts = (buffered + chunk).split("\n");
  const rest = parts.pop() ?? "";
  return { lines: parts.filter((l) => l.length > 0), rest };
}

/** A pod of the probe mesh: where it runs and its address. */
export interface ProbePod {
  pod: string;
  node: string;
  ip: string;
}

/** One row of a scenario's report: a path between pods on two nodes. */
export interface PathReport {
  fromNode: string;
  toNode: string;
  fromPod: string;
  toPod: string;
  stats: PathStats;
  /** Whether either end's node was the one the scenario disturbed (its loss is reported, not failed). */
  disturbed: boolean;
}

/** Paths that must not lose a packet (neither end disturbed) but did, or whose TCP flow broke. */
export function failures(rows: PathReport[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    if (r.disturbed) continue;
    const s = r.stats;
    const name = `${r.fromNode}/${r.fromPod} -> ${r.toNode}/${r.toPod}`;
    if (s.icmp.lost > 0) out.push(`${name}: ${s.icmp.lost} of ${s.icmp.sent} ICMP echoes lost`);
    if (s.tcp.breaks > 0 || !s.tcp.up)
      out.push(
        `${name}: TCP connection ${s.tcp.up ? `broke ${s.tcp.breaks} time(s)` : "down"}${s.tcp.lastError ? ` (${s.tcp.lastError})` : ""}`,
      );
    if (s.icmp.sent === 0) out.push(`${name}: no ICMP echo was sent (prober not running?)`);
    if (s.tcp.echoes === 0) out.push(`${name}: no TCP echo came back`);
  }
  return out;
}

/** The whole scenario in two numbers: lost echoes over every path, and the longest gap anywhere. */
export function summarize(rows: PathReport[]): {
  lost: number;
  sent: number;
  longestGapMs: number;
  tcpBreaks: number;
  lostUndisturbed: number;
} {
  let lost = 0;
  let sent = 0;
  let longestGapMs = 0;
  let tcpBreaks = 0;
  let lostUndisturbed = 0;
  for (const r of rows) {
    lost += r.stats.icmp.lost;
    sent += r.stats.icmp.sent;
    tcpBreaks += r.stats.tcp.breaks;
    if (!r.disturbed) lostUndisturbed += r.stats.icmp.lost;
    longestGapMs = Math.max(longestGapMs, r.stats.icmp.longestGapMs, r.stats.tcp.longestGapMs);
  }
  return { lost, sent, longestGapMs, tcpBreaks, lostUndisturbed };
}

/** A fixed-width table of the paths: ICMP lost/sent and longest gap, TCP breaks and longest gap. */
export function formatReport(title: string, rows: PathReport[]): string {
  const head = ["path", "icmp lost/sent", "icmp gap", "tcp breaks", "tcp gap", ""];
  const body = rows.map((r) => [
    `${r.fromNode} -> ${r.toNode}`,
    `${r.stats.icmp.lost}/${r.stats.icmp.sent}`,
    `${(r.stats.icmp.longestGapMs / 1000).toFixed(1)} s`,
    String(r.stats.tcp.breaks),
    `${(r.stats.tcp.longestGapMs / 1000).toFixed(1)} s`,
    r.disturbed ? "(restarted node)" : "",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] as number))
      .join("  ")
      .trimEnd();
  return [title, line(head), ...body.map(line)].join("\n");
}
