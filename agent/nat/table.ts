/**
 * The agent's one nftables table, kept equal to a NatPlan with the `nft` program (Debian
 * nftables): every change is one `nft -f` transaction that replaces the whole table, so the
 * rules never have a gap and never exist half. The table is listed after each change; a periodic
 * check lists it again and rewrites it when anyone changed or deleted it. No other table is read
 * or written.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { jittered, type Logger, sameValue } from "../../lib/index.js";
import { NAT_TABLE_TEXT, type NatPlan, natScript } from "./rules.js";

export interface NatState {
  /** The plan in the kernel (undefined: no table, none wanted). */
  applied?: NatPlan;
  /** Why the last change or check failed. */
  error?: string;
}

export interface NatTableOptions {
  logger?: Logger;
  /**
   * The nft command line (default /usr/sbin/nft when present, else nft from PATH); tests prefix it
   * with `ip netns exec NS` so the table lands in their namespace.
   */
  nft?: string[];
  /** How often the table is checked for outside changes (default 60 s, jittered). */
  checkIntervalMs?: number;
  /** Told after every apply or check that changed the state. */
  onChange?: (s: NatState) => void;
}

export class NatTable {
  private want: NatPlan | undefined;
  private wanted = false;
  private state: NatState = {};
  /** `nft -j list table` right after our last write: anything else found later is drift. */
  private listed: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly nft: string[];

  constructor(private readonly opts: NatTableOptions = {}) {
    this.nft = opts.nft ?? [existsSync("/usr/sbin/nft") ? "/usr/sbin/nft" : "nft"];
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), jittered(this.opts.checkIntervalMs ?? 60_000));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.queue;
  }

  status(): NatState {
    return { ...this.state };
  }

  /** Makes `plan` the table's content (undefined: no table). Only a change touches the kernel. */
  set(plan: NatPlan | undefined): Promise<void> {
    if (this.wanted && sameValue(plan ?? null, this.want ?? null) && !this.state.error) return this.queue;
    this.want = plan;
    this.wanted = true;
    return this.run(() => this.apply());
  }

  /** Lists the table and rewrites it if it is not what we last wrote. */
  check(): Promise<void> {
    if (!this.wanted) return this.queue;
    return this.run(async () => {
      const now = await this.list();
      if (now !== this.listed || this.state.error) {
        this.opts.logger?.warn("NAT table changed outside the agent; rewriting it", {
          table: NAT_TABLE_TEXT,
        });
        await this.apply();
      }
    });
  }

  private run(f: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(f).catch((err: unknown) => {
      this.state = { ...this.state, error: err instanceof Error ? err.message : String(err) };
      this.opts.logger?.error("outgoing NAT table", { error: this.state.error });
      this.opts.onChange?.(this.status());
    });
    return this.queue;
  }

  private async apply(): Promise<void> {
    const plan = this.want;
    await this.exec(["-f", "-"], natScript(plan));
    this.listed = await this.list();
    const before = this.state;
    this.state = plan ? { applied: plan } : {};
    if (!sameValue(before, this.state)) {
      this.opts.logger?.info(plan ? "outgoing NAT table written" : "outgoing NAT table removed", {
        table: NAT_TABLE_TEXT,
        ...(plan ? { pools: plan.pools } : {}),
      });
      this.opts.onChange?.(this.status());
    }
  }

  /** The table as nft prints it in JSON, or "" when there is none. */
  private async list(): Promise<string> {
    try {
      return await this.exec(["-j", "list", "table", ...NAT_TABLE_TEXT.split(" ")]);
    } catch (err) {
      if (/No such file or directory|does not exist/i.test(String(err))) return "";
      throw err;
    }
  }

  private exec(args: string[], input?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const [cmd, ...prefix] = this.nft as [string, ...string[]];
      const child = execFile(cmd, [...prefix, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
        if (err) {
          const e = err as NodeJS.ErrnoException;
          const why =
            e.code === "ENOENT"
              ? `${cmd} not found: install nftables (apt-get install nftables)`
              : stderr.trim() || e.message;
          reject(new Error(`nft ${args.join(" ")}: ${why}`));
        } else resolve(stdout);
      });
      if (input !== undefined) child.stdin?.end(input);
    });
  }
}
