import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

/**
 * Watches kernels for lost routes, continuously: one `ip monitor route` per namespace reports
 * every deletion the moment it happens (a route gone for a millisecond counts), and a periodic
 * full read catches a route that is missing without a deletion having been seen. Used to show
 * that a change (a reflector replaced) never takes a route away from any kernel.
 */

export interface LostRoute {
  ns: string;
  dst: string;
  at: number;
  how: "deleted" | "missing";
}

export interface RouteWatchOptions {
  /** namespace -> the destinations (CIDRs as `ip` prints them) it must hold. Re-read on every check. */
  expected: () => Map<string, Set<string>>;
  /** Only routes with this protocol count (BIRD's is 12, printed as "bird"). */
  protocol: string;
  /** How often every namespace is read in full (default 1000 ms). */
  checkMs?: number;
  /** Reads one namespace's routes of `protocol` (destinations). */
  read: (ns: string) => Promise<Set<string>>;
}

export class RouteWatch {
  readonly lost: LostRoute[] = [];
  checks = 0;
  private readonly monitors: ChildProcess[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private checking: Promise<void> | undefined;

  constructor(private readonly opts: RouteWatchOptions) {}

  start(): void {
    for (const ns of this.opts.expected().keys()) {
      const child = spawn("ip", ["-n", ns, "monitor", "route"], { stdio: ["ignore", "pipe", "ignore"] });
      this.monitors.push(child);
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        const m = /^Deleted (\S+) .*proto (\S+)/.exec(line);
        if (!m || this.stopped) return;
        const dst = m[1] as string;
        if (m[2] !== this.opts.protocol && m[2] !== "bird") return;
        if (this.opts.expected().get(ns)?.has(dst))
          this.lost.push({ ns, dst, at: Date.now(), how: "deleted" });
      });
    }
    const tick = () => {
      this.checking = this.check().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.opts.checkMs ?? 1000);
      });
    };
    tick();
  }

  private async check(): Promise<void> {
    const expected = this.opts.expected();
    await Promise.all(
      [...expected].map(async ([ns, want]) => {
        const have = await this.opts.read(ns).catch(() => undefined);
        if (!have || this.stopped) return;
        const now = this.opts.expected().get(ns);
        for (const dst of want)
          if (!have.has(dst) && now?.has(dst)) this.lost.push({ ns, dst, at: Date.now(), how: "missing" });
      }),
    );
    this.checks++;
  }

  async stop(): Promise<LostRoute[]> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.checking;
    for (const m of this.monitors) m.kill();
    return this.lost;
  }
}
