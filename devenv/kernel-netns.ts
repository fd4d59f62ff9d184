/**
 * Helpers for the kernel dataplane tests and benchmark: network namespaces named per process,
 * iproute2 as the independent oracle, and the dataplane driver running inside a namespace.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { sh } from "./procs.js";

const distRoot = join(fileURLToPath(import.meta.url), "..", "..");
export const DRIVER = join(distRoot, "devenv", "dataplane-driver.js");

/** Fails (never skips) with how to get what is missing. */
export function requireRootAndIproute2(): void {
  if (process.getuid?.() !== 0) {
    throw new Error("dataplane tests need root (network namespaces, netlink): run them as root, e.g. in CI");
  }
  for (const tool of ["ip", "bridge"]) {
    try {
      execFileSync(tool, ["-V"], { stdio: "ignore" });
    } catch {
      throw new Error(`dataplane tests need '${tool}' from iproute2: apt-get install iproute2`);
    }
  }
  if (!existsSync(DRIVER)) throw new Error(`${DRIVER} missing: build first (npx tsc -p tsconfig.json)`);
}

export class Netns {
  readonly name: string;

  constructor(tag: string) {
    // unique per process: test files run two at a time
    this.name = `weftk-${process.pid}-${tag}`;
    sh("ip", ["netns", "add", this.name]);
    this.ip("link", "set", "lo", "up");
  }

  ip(...args: string[]): string {
    return sh("ip", ["-n", this.name, ...args]);
  }

  /** Runs a whole batch of `ip` commands (one per line) in this namespace. */
  ipBatch(lines: string[]): void {
    execFileSync("ip", ["-n", this.name, "-batch", "-"], {
      input: lines.join("\n"),
      stdio: ["pipe", "ignore", "pipe"],
    });
  }

  bridgeBatch(lines: string[]): void {
    execFileSync("bridge", ["-n", this.name, "-batch", "-"], {
      input: lines.join("\n"),
      stdio: ["pipe", "ignore", "pipe"],
    });
  }

  json<T = Record<string, unknown>>(...args: string[]): T[] {
    const out = sh("ip", ["-n", this.name, "-json", ...args]).trim();
    return out ? (JSON.parse(out) as T[]) : [];
  }

  bridgeJson<T = Record<string, unknown>>(...args: string[]): T[] {
    const out = sh("bridge", ["-n", this.name, "-json", ...args]).trim();
    return out ? (JSON.parse(out) as T[]) : [];
  }

  /** Routes with protocol 0x57 in the main table, as "dst via gw dev onlink" / "blackhole dst" lines. */
  ownedRoutes(): string[] {
    return this.json<IpRoute>("route", "show", "proto", "87").map(routeLine).sort();
  }

  routes(): string[] {
    return this.json<IpRoute>("route", "show").map(routeLine).sort();
  }

  neighbors(dev: string): string[] {
    return this.json<{ dst: string; lladdr?: string; state?: string[] }>("neigh", "show", "dev", dev)
      .map((n) => `${n.dst} ${n.lladdr ?? "-"} ${(n.state ?? []).join(",")}`)
      .sort();
  }

  fdb(dev: string): string[] {
    return this.bridgeJson<{ mac: string; dst?: string; flags?: string[]; state?: string }>(
      "fdb",
      "show",
      "dev",
      dev,
    )
      .filter((f) => f.dst)
      .map((f) => `${f.mac} ${f.dst} ${[...(f.flags ?? []), f.state ?? ""].join(",")}`)
      .sort();
  }

  /** Nexthop objects with protocol 0x57, as "id N via GW dev DEV onlink" lines. */
  ownedNexthops(): string[] {
    return this.json<{ id: number; gateway?: string; dev?: string; flags?: string[] }>(
      "nexthop",
      "show",
      "proto",
      "87",
    )
      .map(
        (n) =>
          `id ${n.id} via ${n.gateway ?? "-"} dev ${n.dev ?? "-"}${n.flags?.includes("onlink") ? " onlink" : ""}`,
      )
      .sort();
  }

  /** Owned routes' nexthop ids by destination (routes without one are left out). */
  routeNexthops(): Map<string, number> {
    return new Map(
      this.json<IpRoute & { nhid?: number }>("route", "show", "proto", "87")
        .filter((r) => r.nhid !== undefined)
        .map((r) => [r.dst, r.nhid!]),
    );
  }

  delete(): void {
    try {
      sh("ip", ["netns", "del", this.name]);
    } catch {
      /* already gone */
    }
  }
}

export interface IpRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  flags?: string[];
  metric?: number;
}

export function routeLine(r: IpRoute): string {
  const dst = r.dst.includes("/") || r.dst === "default" ? r.dst : `${r.dst}/32`;
  if (r.type === "blackhole") return `blackhole ${dst}`;
  const parts = [dst];
  if (r.gateway) parts.push(`via ${r.gateway}`);
  if (r.dev) parts.push(`dev ${r.dev}`);
  if (r.flags?.includes("onlink")) parts.push("onlink");
  return parts.join(" ");
}

/** A veth pair whose ends live in two namespaces, with addresses; the underlay between "nodes". */
export function linkNamespaces(a: Netns, aAddr: string, b: Netns, bAddr: string, names = ["u0", "u0"]) {
  a.ip("link", "add", names[0]!, "type", "veth", "peer", "name", "tmp-peer", "netns", b.name);
  b.ip("link", "set", "tmp-peer", "name", names[1]!);
  a.ip("addr", "add", aAddr, "dev", names[0]!);
  b.ip("addr", "add", bAddr, "dev", names[1]!);
  a.ip("link", "set", names[0]!, "up");
  b.ip("link", "set", names[1]!, "up");
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** The dataplane driver running in a namespace, spoken to over JSON lines. */
export class Driver {
  readonly proc: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  readonly stderr: string[] = [];
  private exited = false;

  constructor(ns: Netns, env: NodeJS.ProcessEnv = {}) {
    this.proc = spawn("ip", ["netns", "exec", ns.name, process.execPath, DRIVER], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, WEFT_LOG_LEVEL: "warn", ...env },
    });
    createInterface({ input: this.proc.stdout! }).on("line", (line) => {
      let r: Reply;
      try {
        r = JSON.parse(line) as Reply;
      } catch {
        return;
      }
      this.waiting.get(r.id)?.(r);
      this.waiting.delete(r.id);
    });
    this.proc.stderr!.on("data", (d: Buffer) => this.stderr.push(d.toString()));
    this.proc.on("exit", () => {
      this.exited = true;
      for (const w of this.waiting.values())
        w({ id: -1, ok: false, error: `driver exited: ${this.stderr.join("")}` });
      this.waiting.clear();
    });
  }

  call<T = unknown>(cmd: string, extra: object = {}, timeoutMs = 60_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`driver already exited: ${this.stderr.join("")}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`driver ${cmd} timed out`)), timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        if (r.ok) resolve(r.result as T);
        else reject(new Error(`driver ${cmd}: ${r.error}`));
      });
      this.proc.stdin!.write(`${JSON.stringify({ id, cmd, ...extra })}\n`);
    });
  }

  /** Asks it to stop; kills it (by pid) if it does not exit in time. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.proc.once("exit", () => r()));
    this.call("stop", {}, 5000).catch(() => undefined);
    const t = setTimeout(() => this.kill(), 5000);
    await gone;
    clearTimeout(t);
  }

  kill(): void {
    if (!this.exited && this.proc.pid !== undefined) {
      try {
        process.kill(this.proc.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  }
}

/**
 * Polls until `check` holds. The default wait stays below the dataplane's 60 s full resync, so a
 * repair seen in time came from the netlink event path; how fast is printed, never asserted.
 */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | false,
  timeoutMs = 30_000,
  intervalMs = 20,
): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  let last: unknown;
  for (;;) {
    try {
      const v = check();
      if (v !== undefined && v !== false) return { value: v, ms: performance.now() - t0 };
    } catch (err) {
      last = err;
    }
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(
        `${what}: not within ${timeoutMs} ms${last instanceof Error ? `: ${last.message}` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
