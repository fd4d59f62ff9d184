import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  type BfdSession,
  type BirdProtocol,
  parseShowBfdSessions,
  parseShowProtocols,
} from "../../bgp/index.js";
import { createLogger, type Logger, Serial } from "../../lib/index.js";

const run = promisify(execFile);

/**
 * Runs one BIRD 2 as a child process with its own configuration file, control socket and pid
 * file under `dir` (I/O edge of the BGP feature).
 *
 * - apply(config): writes the file (mode 0600: it may hold passwords) only after `bird -p` accepted
 *   it, then starts BIRD or asks it to `configure`. Because protocol names are stable, BIRD keeps
 *   every session whose own configuration did not change, and reloads routes instead of
 *   restarting sessions whose filters changed.
 * - If BIRD dies it is started again with exponential backoff (reset once it stayed up a while).
 * - A BIRD left running by a previous agent (same socket) is adopted, not restarted, so routes
 *   and sessions survive an agent restart.
 * - Status is read periodically with `birdc show protocols all` (and `show bfd sessions` when BFD
 *   runs).
 * - apply(config, { graceful: true }) replaces BIRD through a BGP graceful restart instead of a
 *   reconfigure: for changes BIRD can only make by restarting sessions (a node becoming or ceasing
 *   to be a reflector), the peers keep this node's routes while it restarts and the new BIRD keeps
 *   the kernel's routes until its sessions have re-learned them (bird -R).
 */

export interface BirdProcessOptions {
  /** State directory: bird.conf, bird.ctl (socket), bird.pid. */
  dir: string;
  birdPath?: string;
  birdcPath?: string;
  /** Prefix for the BIRD command, e.g. ["ip", "netns", "exec", "ns1"] (tests, the lab). */
  wrap?: string[];
  logger?: Logger;
  /** First restart delay; doubles up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** How often status is read when onStatus is set (default 5000 ms)... */
  statusIntervalMs?: number;
  /**
   * ...and how often once every BGP session is Established and nothing changed since the last
   * read (default 5 x statusIntervalMs). A full mesh of 50 nodes read every 2 s kept 50 agents
   * parsing 49-session dumps 25 times a second; a configuration change reads fast again.
   */
  statusIdleIntervalMs?: number;
  onStatus?: (protocols: BirdProtocol[], bfd?: BfdSession[]) => void;
  /** Called after every (re)start of BIRD, with the pid. */
  onStart?: (pid: number) => void;
}

export type ApplyResult = "started" | "reconfigured" | "restarted gracefully" | "unchanged";

export class BirdProcess {
  readonly configPath: string;
  readonly socketPath: string;
  readonly pidPath: string;
  private readonly log: Logger;
  private child: ChildProcess | undefined;
  private adoptedPid: number | undefined;
  private adoptTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private statusTick: (() => Promise<void>) | undefined;
  private statusReading = false;
  /** Session states at the last read; undefined after a change, so the next reads are fast. */
  private lastStates: string | undefined;
  private stopping = false;
  /** Set while apply() replaces BIRD on purpose, so its exit is not taken for a crash. */
  private replacing = false;
  private backoff: number;
  private startedAt = 0;
  private current: string | undefined;
  /** Serializes apply/restart so that a configure never races a start. */
  private readonly series = new Serial();

  constructor(private readonly opts: BirdProcessOptions) {
    this.configPath = join(opts.dir, "bird.conf");
    this.socketPath = join(opts.dir, "bird.ctl");
    this.pidPath = join(opts.dir, "bird.pid");
    this.log = opts.logger ?? createLogger("bird");
    this.backoff = opts.minBackoffMs ?? 500;
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  }

  /** Pid of the running BIRD, if any. */
  get pid(): number | undefined {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return this.child.pid;
    return this.adoptedPid;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  /** Validates, writes and activates a configuration. Throws (and keeps the old one) when BIRD refuses it. */
  apply(config: string, opts: { graceful?: boolean } = {}): Promise<ApplyResult> {
    return this.series.run(() => this.applyNow(config, opts.graceful === true));
  }

  /** The configuration BIRD runs (what the file holds), if known. */
  activeConfig(): string | undefined {
    if (this.current !== undefined) return this.current;
    try {
      return readFileSync(this.configPath, "utf8");
    } catch {
      return undefined;
    }
  }

  private async applyNow(config: string, graceful: boolean): Promise<ApplyResult> {
    if (this.stopping) throw new Error("BIRD is being stopped");
    if (this.current === undefined) this.tryAdopt();
    if (config === this.current && this.running) return "unchanged";
    const tmp = `${this.configPath}.new`;
    writeFileSync(tmp, config, { mode: 0o600 });
    try {
      await run(this.birdPath, ["-p", "-c", tmp], { timeout: 15000 });
    } catch (err) {
      safeUnlink(tmp);
      throw new Error(`BIRD refused the rendered configuration: ${execMessage(err)}`);
    }
    renameSync(tmp, this.configPath);
    this.current = config;
    if (!this.running) {
      await this.startNow();
      this.readStatusSoon();
      return "started";
    }
    if (graceful) {
      await this.restartGracefullyNow();
      this.readStatusSoon();
      return "restarted gracefully";
    }
    // `current` is what the file holds; forget it on failure so that the next apply retries
    const out = await this.birdc(["configure"]).catch((err: unknown) => {
      this.current = undefined;
      throw new Error(`birdc configure failed: ${execMessage(err)}`);
    });
    if (!/Reconfigur(ed|ation in progress)/.test(out)) {
      this.current = undefined;
      throw new Error(`birdc configure failed: ${out.trim().split("\n").slice(-1)[0] ?? ""}`);
    }
    this.log.info("BIRD reconfigured");
    this.readStatusSoon();
    return "reconfigured";
  }

  /**
   * `birdc graceful restart`: BIRD closes its sessions without a notification (peers that
   * negotiated graceful restart keep its routes, marked stale) and exits leaving the kernel's
   * routes; the new BIRD starts in recovery (-R) and prunes only what it did not re-learn.
   */
  private async restartGracefullyNow(): Promise<void> {
    const pid = this.pid;
    this.replacing = true;
    try {
      if (this.adoptTimer) clearTimeout(this.adoptTimer);
      await this.birdc(["graceful", "restart"]);
      const deadline = Date.now() + 10000;
      while (pid !== undefined && alive(pid) && Date.now() < deadline) await sleep(20);
      if (pid !== undefined && alive(pid)) {
        this.log.warn("BIRD did not exit after graceful restart; killing it", { pid });
        signal(pid, "SIGKILL");
        while (alive(pid)) await sleep(20);
      }
      this.child = undefined;
      this.adoptedPid = undefined;
      await this.startNow(true);
      this.log.info("BIRD restarted gracefully", { pid: this.pid });
    } finally {
      this.replacing = false;
    }
  }

  /** `birdc -s SOCKET args...`, output as text. */
  async birdc(args: string[]): Promise<string> {
    const { stdout } = await run(this.birdcPath, ["-s", this.socketPath, ...args], { timeout: 10000 });
    return stdout;
  }

  async status(): Promise<BirdProtocol[]> {
    return parseShowProtocols(await this.birdc(["show", "protocols", "all"]));
  }

  private get statusBusyMs(): number {
    return this.opts.statusIntervalMs ?? 5000;
  }

  /** Starts the periodic status reader (needs onStatus). */
  watchStatus(): void {
    if (!this.opts.onStatus || this.statusTick) return;
    const busyMs = this.statusBusyMs;
    const idleMs = this.opts.statusIdleIntervalMs ?? busyMs * 5;
    const tick = async () => {
      this.statusTimer = undefined;
      this.statusReading = true;
      let settled = false;
      if (this.running) {
        try {
          const protocols = await this.status();
          const bfd = protocols.some((p) => p.proto === "BFD" && p.state === "up")
            ? parseShowBfdSessions(await this.birdc(["show", "bfd", "sessions"]))
            : undefined;
          const states = `${sessionStates(protocols)};${bfd?.map((b) => `${b.address}=${b.state}`).join(",") ?? ""}`;
          settled = states === this.lastStates && protocols.every(isSettled);
          this.lastStates = states;
          this.opts.onStatus?.(protocols, bfd);
        } catch (err) {
          this.lastStates = undefined;
          this.log.debug("status read failed", { error: execMessage(err) });
        }
      }
      this.statusReading = false;
      if (!this.stopping && !this.statusTimer) this.statusTimer = setTimeout(tick, settled ? idleMs : busyMs);
    };
    this.statusTick = tick;
    this.statusTimer = setTimeout(tick, 0);
  }

  /** After a (re)configuration: sessions are about to change, so read at the fast pace again. */
  private readStatusSoon(): void {
    this.lastStates = undefined;
    const tick = this.statusTick;
    if (!tick || this.stopping || this.statusReading) return;
    if (this.statusTimer) clearTimeout(this.statusTimer);
    this.statusTimer = setTimeout(tick, this.statusBusyMs);
  }

  /**
   * Stops watching BIRD and leaves it running: the next agent adopts it, so an agent restart
   * neither drops sessions nor withdraws routes (the dataplane outlives its agent).
   */
  release(): void {
    this.stopping = true;
    for (const t of [this.restartTimer, this.statusTimer, this.adoptTimer]) if (t) clearTimeout(t);
    this.child?.unref();
    this.child?.stdout?.destroy();
    this.child?.stderr?.destroy();
  }

  /** Stops BIRD: SIGTERM (BIRD closes sessions cleanly), SIGKILL after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    for (const t of [this.restartTimer, this.statusTimer, this.adoptTimer]) if (t) clearTimeout(t);
    await this.series.idle();
    const pid = this.pid;
    if (pid === undefined) return;
    const exited = this.child ? new Promise<void>((r) => this.child?.once("exit", () => r())) : undefined;
    signal(pid, "SIGTERM");
    const deadline = Date.now() + graceMs;
    while (alive(pid) && Date.now() < deadline) await sleep(50);
    if (alive(pid)) signal(pid, "SIGKILL");
    if (exited) await exited;
    while (alive(pid)) await sleep(20);
    this.child = undefined;
    this.adoptedPid = undefined;
  }

  private get birdPath(): string {
    return this.opts.birdPath ?? "bird";
  }

  private get birdcPath(): string {
    return this.opts.birdcPath ?? "birdc";
  }

  /** Takes over a BIRD started by an earlier agent with this socket, if it still runs. */
  private tryAdopt(): void {
    if (this.running) return;
    let pid: number;
    try {
      pid = Number(readFileSync(this.pidPath, "utf8").trim());
    } catch {
      return;
    }
    if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return;
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
    } catch {
      return;
    }
    if (!cmd.includes("bird") || !cmd.includes(this.socketPath)) return;
    this.adoptedPid = pid;
    this.log.info("adopted running BIRD", { pid });
    const poll = () => {
      if (this.adoptedPid === undefined || this.stopping || this.replacing) return;
      if (!alive(this.adoptedPid)) {
        this.log.warn("adopted BIRD exited", { pid: this.adoptedPid });
        this.adoptedPid = undefined;
        this.scheduleRestart();
        return;
      }
      this.adoptTimer = setTimeout(poll, 1000);
    };
    this.adoptTimer = setTimeout(poll, 1000);
  }

  private async startNow(forceRecover = false): Promise<void> {
    // After a crash the kernel still holds the dead BIRD's routes (they are persistent). With -R the
    // new BIRD keeps them until its sessions have re-learned everything (graceful restart
    // recovery) instead of pruning them at its first kernel scan, which would drop traffic.
    const recover = forceRecover || this.startedAt > 0 || existsSync(this.pidPath);
    const args = [
      "-f",
      "-c",
      this.configPath,
      "-s",
      this.socketPath,
      "-P",
      this.pidPath,
      ...(recover ? ["-R"] : []),
    ];
    const wrap = this.opts.wrap ?? [];
    const [cmd, ...rest] = wrap.length ? [...wrap, this.birdPath, ...args] : [this.birdPath, ...args];
    const child = spawn(cmd as string, rest, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    this.startedAt = Date.now();
    const logLines = (buf: Buffer) => {
      for (const line of buf.toString("utf8").split("\n")) if (line.trim()) this.log.info(line.trim());
    };
    child.stdout?.on("data", logLines);
    child.stderr?.on("data", logLines);
    const spawned = new Promise<void>((resolve, reject) => {
      child.once("spawn", () => resolve());
      child.once("error", reject);
    });
    child.once("exit", (code, sig) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.stopping || this.replacing) return;
      this.log.warn("BIRD exited", { code, signal: sig });
      this.scheduleRestart();
    });
    await spawned;
    // Ready once the control socket answers; a BIRD that dies at once shows up here as an error.
    const deadline = Date.now() + 10000;
    for (;;) {
      if (this.child !== child) throw new Error("BIRD exited right after start");
      try {
        await this.birdc(["show", "status"]);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`BIRD control socket did not answer: ${execMessage(err)}`);
        await sleep(50);
      }
    }
    this.log.info("BIRD started", { pid: child.pid });
    if (child.pid !== undefined) this.opts.onStart?.(child.pid);
  }

  private scheduleRestart(): void {
    if (this.stopping || this.restartTimer) return;
    const min = this.opts.minBackoffMs ?? 500;
    const max = this.opts.maxBackoffMs ?? 30000;
    // a BIRD that ran for a minute was healthy: start over from the shortest delay
    if (Date.now() - this.startedAt > 60000) this.backoff = min;
    const delay = this.backoff;
    this.backoff = Math.min(max, this.backoff * 2);
    this.log.info("restarting BIRD", { inMs: delay });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping || this.running || this.current === undefined) return;
      this.series
        .run(() => this.startNow())
        .catch((err: unknown) => {
          this.log.error("BIRD restart failed", { error: execMessage(err) });
          this.scheduleRestart();
        });
    }, delay);
  }
}

function execMessage(err: unknown): string {
  const e = err as { stderr?: string; stdout?: string; message?: string };
  const text = `${e.stderr ?? ""}${e.stdout ?? ""}`.trim() || e.message || String(err);
  return text.split("\n").slice(-3).join(" ");
}

function safeUnlink(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    /* already gone */
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Each BGP protocol's name and state, to tell whether anything changed between two reads. */
function sessionStates(protocols: BirdProtocol[]): string {
  return protocols
    .filter((p) => p.proto === "BGP")
    .map((p) => `${p.name}=${p.state}/${p.bgpState ?? ""}`)
    .join(",");
}

function isSettled(p: BirdProtocol): boolean {
  return p.proto !== "BGP" || p.bgpState === "Established";
}
