import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { startDetached, stopPid, waitFor } from "./procs.js";

const run = promisify(execFile);

/**
 * FRR (Debian `frr`) as an independent BGP implementation for tests and benchmarks: zebra, bfdd
 * and bgpd started from the package's binaries inside a network namespace, each with its
 * configuration, vty socket, pid and log in one directory of the caller's, stopped by pid.
 * Nothing under /etc/frr or /var/run/frr is used, so several routers (and a system FRR) coexist.
 * Unlike the container image (devenv/containers/frr.ts), it runs bfdd, which the BFD tests need.
 */

const DAEMONS = ["zebra", "bfdd", "bgpd"] as const;
const SBIN = "/usr/lib/frr";

/** Fails with how to get FRR when it is not installed. */
export function frrMissing(): string | undefined {
  for (const f of [`${SBIN}/zebra`, `${SBIN}/bgpd`, `${SBIN}/bfdd`, "/usr/bin/vtysh"])
    if (!existsSync(f)) return `${f} not found: install FRR (apt-get install frr)`;
  return undefined;
}

export class LocalFrr {
  readonly pids: number[] = [];

  private constructor(
    readonly ns: string,
    readonly dir: string,
  ) {}

  /** Starts zebra, bfdd and bgpd in `ns` with `config` (FRR's integrated syntax). */
  static async start(ns: string, dir: string, config: string): Promise<LocalFrr> {
    const missing = frrMissing();
    if (missing) throw new Error(missing);
    mkdirSync(dir, { recursive: true });
    // the daemons drop to user frr and must write their sockets and logs here
    chownSync(dir, ...frrIds());
    const r = new LocalFrr(ns, dir);
    try {
      for (const d of DAEMONS) {
        const conf = join(dir, `${d}.conf`);
        writeFileSync(conf, config);
        chownSync(conf, ...frrIds());
        const args = [
          "netns",
          "exec",
          ns,
          `${SBIN}/${d}`,
          "--vty_socket",
          dir,
          "-z",
          join(dir, "zserv.api"),
          "-P",
          "0",
          "-i",
          join(dir, `${d}.pid`),
          "-f",
          conf,
          "--log",
          `file:${join(dir, `${d}.log`)}`,
          ...(d === "bfdd" ? ["--bfdctl", join(dir, "bfdd.sock")] : []),
        ];
        r.pids.push(startDetached("ip", args, join(dir, `${d}.out`)).pid);
        await waitFor(
          `FRR ${d} in ${ns} to open its vty`,
          () => (existsSync(join(dir, `${d}.vty`)) ? true : undefined),
          20_000,
          50,
        );
      }
    } catch (err) {
      await r.stop();
      throw err;
    }
    return r;
  }

  /** `vtysh -c cmd ...` against this router. */
  async vtysh(...commands: string[]): Promise<string> {
    const { stdout } = await run("vtysh", ["--vty_socket", this.dir, ...commands.flatMap((c) => ["-c", c])], {
      timeout: 20_000,
    });
    return stdout;
  }

  /** One `show ... json` command, parsed (the same shape as the container helper's). */
  async vtyshJson<T>(command: string): Promise<T> {
    return JSON.parse(await this.vtysh(command)) as T;
  }

  /** Configuration commands, as typed after `configure terminal`. */
  async configure(lines: string[]): Promise<void> {
    await this.vtysh("configure terminal", ...lines);
  }

  async stop(): Promise<void> {
    await Promise.all(this.pids.splice(0).map((p) => stopPid(p, 3000)));
  }
}

/** uid and gid of the frr user the package creates (the daemons drop to it). */
function frrIds(): [number, number] {
  const id = (file: string) => {
    const line = readFileSync(file, "utf8")
      .split("\n")
      .find((l) => l.startsWith("frr:"));
    if (!line) throw new Error(`no frr entry in ${file}: reinstall FRR (apt-get install --reinstall frr)`);
    return Number(line.split(":")[2]);
  };
  return [id("/etc/passwd"), id("/etc/group")];
}
