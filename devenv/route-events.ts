import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

/**
 * Route changes in many namespaces as they happen, each stamped by `ip -ts monitor route` when it
 * received the kernel's message. Timing from these stamps leaves out the cost of asking every
 * kernel over and over (50 `ip route` runs per poll took seconds on a loaded machine), so
 * benchmarks measure BGP, not their own polling.
 */

export interface RouteEvent {
  ns: string;
  kind: "add" | "del";
  dst: string;
  /** ms since the epoch, from ip's own stamp. */
  at: number;
}

/** `2026-12-03T18:34:10.965834`: local time with microseconds. */
function stampMs(stamp: string): number {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?$/.exec(stamp);
  if (!m) return Date.now();
  const n = (i: number) => Number(m[i]);
  return new Date(n(1), n(2) - 1, n(3), n(4), n(5), n(6)).getTime() + Number(m[7] ?? 0) * 1000;
}

export class RouteEvents {
  readonly events: RouteEvent[] = [];
  private readonly monitors: ChildProcess[] = [];
  private waiters: Array<() => void> = [];

  /** One monitor per namespace; only routes with `protocol` (as ip prints it) are kept. */
  constructor(namespaces: readonly string[], protocol = "bird") {
    for (const ns of namespaces) {
      const child = spawn("ip", ["-ts", "-n", ns, "monitor", "route"], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      this.monitors.push(child);
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        const m = /^\[([^\]]+)\] (Deleted )?(\S+) .*proto (\S+)/.exec(line);
        if (!m || m[4] !== protocol) return;
        this.events.push({
          ns,
          kind: m[2] ? "del" : "add",
          dst: m[3] as string,
          at: stampMs(m[1] as string),
        });
        for (const w of this.waiters.splice(0)) w();
      });
    }
  }

  /**
   * The first event of `kind` for `dst` at or after `since` in each of `namespaces`, once every
   * one of them has one; rejects after timeoutMs naming those still waiting.
   */
  async each(
    namespaces: readonly string[],
    kind: RouteEvent["kind"],
    dst: string,
    since: number,
    timeoutMs: number,
  ): Promise<Map<string, number>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = new Map<string, number>();
      for (const e of this.events)
        if (e.kind === kind && e.dst === dst && e.at >= since && !found.has(e.ns)) found.set(e.ns, e.at);
      const missing = namespaces.filter((n) => !found.has(n));
      if (missing.length === 0) return found;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no ${kind} of ${dst} within ${timeoutMs} ms in ${missing.length} namespace(s): ${missing.slice(0, 5).join(", ")}`,
        );
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  stop(): void {
    for (const m of this.monitors) m.kill();
  }
}
