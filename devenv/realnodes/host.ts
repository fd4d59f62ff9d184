import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { sleep, startDetached } from "../procs.js";
import type { NodePaths } from "./config.js";

const execFileP = promisify(execFile);

/**
 * What makes a network namespace a machine for a kubelet: a persistent mount namespace that its
 * containerd, kubelet and kube-proxy share (with node-private directories over the standard host
 * paths and sysctl value files over /proc/sys), and a cgroup subtree in every hierarchy that holds
 * all of the node's processes, so that teardown can find every one of them by pid.
 */

async function sh(script: string, args: string[] = []): Promise<string> {
  try {
    const { stdout } = await execFileP("/bin/sh", ["-c", script, "sh", ...args], { maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${script.split("\n")[0]}: ${e.stderr?.trim() || e.message}`);
  }
}

/** Mount points of the cgroup hierarchies (v1 controllers, named ones and the unified one). */
export function cgroupMounts(mountinfo = readFileSync("/proc/self/mountinfo", "utf8")): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const fstype = right.split(" ")[0];
    if (fstype === "cgroup" || fstype === "cgroup2") out.push(left.split(" ")[4] as string);
  }
  return out.sort();
}

/** A node's cgroup subtree: `root` for the kubelet's cgroupRoot, `root/system` for the node's daemons. */
export class NodeCgroups {
  readonly mounts = cgroupMounts();

  constructor(readonly root: string) {}

  dirs(sub = ""): string[] {
    return this.mounts.map((m) => join(m, this.root, sub));
  }

  /** Creates the subtree in every hierarchy (cpuset needs its cpus and mems before it takes tasks). */
  create(): void {
    for (const m of this.mounts) {
      for (const sub of ["", "system"]) {
        const dir = join(m, this.root, sub);
        mkdirSync(dir, { recursive: true });
        if (m.endsWith("/cpuset")) {
          for (const f of ["cpuset.cpus", "cpuset.mems"]) {
            const parent = readFileSync(join(dir, "..", f), "utf8").trim();
            if (readFileSync(join(dir, f), "utf8").trim() === "") writeFileSync(join(dir, f), parent);
          }
        }
      }
    }
  }

  /** The cgroup.procs files a process writes its pid to, to join the node's daemon cgroup everywhere. */
  daemonProcsFiles(): string[] {
    return this.dirs("system").map((d) => join(d, "cgroup.procs"));
  }

  /** Every pid in the subtree, in any hierarchy. */
  pids(): number[] {
    const found = new Set<number>();
    const walk = (dir: string) => {
      if (!existsSync(dir)) return;
      try {
        for (const p of readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n"))
          if (p.trim()) found.add(Number(p));
      } catch {
        /* removed meanwhile */
      }
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    };
    for (const d of this.dirs()) walk(d);
    return [...found];
  }

  /**
   * SIGKILLs whatever still runs in the subtree (container processes, runc shims) by pid until
   * none is left, then removes the directories bottom-up in every hierarchy.
   */
  async destroy(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pids = this.pids();
      if (pids.length === 0) break;
      if (Date.now() > deadline)
        throw new Error(`processes ${pids.join(",")} in cgroup ${this.root} would not die`);
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
      await sleep(100);
    }
    const rmTree = (dir: string) => {
      if (!existsSync(dir)) return;
      for (const e of readdirSync(dir, { withFileTypes: true }))
        if (e.isDirectory()) rmTree(join(dir, e.name));
      for (let i = 0; ; i++) {
        try {
          rmdirSync(dir);
          return;
        } catch (err) {
          // a cgroup is busy for a moment after its last process died
          if (i > 50) throw err;
        }
        const until = Date.now() + 20;
        while (Date.now() < until) {
          /* spin briefly: rmdir of a dying cgroup succeeds within milliseconds */
        }
      }
    };
    for (const d of this.dirs()) rmTree(d);
  }
}

/**
 * A persistent mount namespace bound to a file, made from a copy of the machine's mounts: the
 * copies of other mount-namespace files and of network-namespace mounts are dropped (they would
 * keep those namespaces alive), then the node's private directories and sysctl files are bound.
 */
export class NodeMountNamespace {
  constructor(
    /** The file the namespace is bound to; its directory is a private bind mount (see nsDir). */
    readonly file: string,
    readonly paths: NodePaths,
  ) {}

  /** Makes a directory fit to hold mount-namespace files (a private bind mount of itself). */
  static async prepareDir(dir: string): Promise<void> {
    mkdirSync(dir, { recursive: true });
    const mounted = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .some((l) => l.split(" ")[4] === dir);
    if (!mounted) await sh('mount --bind "$1" "$1" && mount --make-private "$1"', [dir]);
  }

  async create(nsDir: string): Promise<void> {
    for (const b of this.paths.binds) {
      if (b.target !== "/etc/resolv.conf") {
        mkdirSync(b.source, { recursive: true });
        mkdirSync(b.target, { recursive: true }); // mount point on the host: an empty standard directory
      }
    }
    for (const s of this.paths.sysctlFiles) {
      mkdirSync(join(s.source, ".."), { recursive: true });
      writeFileSync(s.source, `${s.value}\n`);
    }
    writeFileSync(this.file, "");
    const lines = [
      "set -e",
      `umount -l '${nsDir}' 2>/dev/null || true`,
      "umount -l /run/netns 2>/dev/null || true",
      ...this.paths.binds.flatMap((b) => [
        `mount --bind '${b.source}' '${b.target}'`,
        ...(b.target === "/etc/resolv.conf" ? [] : [`mount --make-shared '${b.target}'`]),
      ]),
      ...this.paths.sysctlFiles.map((s) => `mount --bind '${s.source}' '${s.target}'`),
      // Shared within this namespace only (the copies were private, so the peer group is new):
      // containerd accepts HostToContainer volumes (the agent's /var/run/netns) only on shared
      // or slave mounts, and it checks the mount holding the path as written, i.e. "/".
      "mount --make-rshared /",
    ];
    await sh(`unshare --mount='${this.file}' --propagation private /bin/sh -c "$1"`, [lines.join("\n")]);
  }

  /** Unbinds the namespace file; the namespace and its mounts go once no process is left in it. */
  async destroy(): Promise<void> {
    if (!existsSync(this.file)) return;
    await sh('umount "$1" 2>/dev/null || true; rm -f "$1"', [this.file]);
  }
}

/**
 * Starts a node daemon inside the node: it joins the node's daemon cgroup first (so its children,
 * runc shims and containers included, are found at teardown), then enters the mount and network
 * namespaces and execs the program. Same pid throughout, stopped by that pid.
 */
export function startInNode(
  cgroups: NodeCgroups,
  mountFile: string,
  netns: string,
  cmd: string,
  args: string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): number {
  const joinCgroups = cgroups
    .daemonProcsFiles()
    .map((f) => `echo $$ > '${f}'`)
    .join("; ");
  const script = `${joinCgroups}; exec nsenter --mount='${mountFile}' --net='/run/netns/${netns}' -- "$@"`;
  return startDetached("/bin/sh", ["-c", script, "sh", cmd, ...args], logFile, env).pid;
}
