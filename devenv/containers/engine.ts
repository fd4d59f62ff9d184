import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { alive, cmdline, startDetached, stopPid, waitFor } from "../procs.js";
import { HOW_TO_FIX } from "./mode.js";
import { imageStore, NO_REGISTRY_ENV, podmanVersion, REGISTRIES_CONF, run } from "./podman.js";

const execFileP = promisify(execFile);

/**
 * A container engine of the test run's own: podman's Docker-compatible API service on a unix
 * socket in a fresh directory, with configuration and storage of its own (nothing of the
 * machine's podman is read or written). testcontainers talks to it through DOCKER_HOST.
 *
 * What this engine cannot do, by configuration: reach a registry (see NO_REGISTRY_ENV), or attach a
 * container to a bridge/NAT network (no CNI plugin directory, so only `host` and `ns:<path>`
 * network modes work), or let a container ask the machine's DNS resolver (resolv.conf names
 * 127.0.0.1).
 */

/** Label on every container a run starts: its value names the run, for cleanup. */
export const RUN_LABEL = "dev.weft.run";
/** Environment variable through which the suite runner hands its engine to test files. */
export const ENGINE_STATE_ENV = "WEFT_ENGINE_STATE";
const TMP_PREFIX = "weft-engine-";

export interface EngineState {
  dir: string;
  socket: string;
  servicePid: number;
  /** The process that owns it; a run's leftovers are reaped once this pid is gone. */
  ownerPid?: number;
  /** Value of RUN_LABEL on this run's containers. */
  label: string;
  podmanVersion: string;
  /** Image references by recipe name (etcd, frr), built before the engine started. */
  images: Record<string, string>;
  /** Cgroup (v1 path below each hierarchy) every container of this engine is placed under. */
  cgroupParent?: string;
}

const CGROUP_ROOT = "/sys/fs/cgroup";

/**
 * CPU weight of the engine's containers taken together. With cgroup v1 a container's whole
 * cgroup competes with every runnable process of the machine as if it were one process (1024
 * shares), so a busy etcd in a container got a fraction of what the same binary gets outside one
 * and heavy suites timed out on a loaded machine. Eight processes' weight is about what the
 * suites' own servers (etcd, a BGP daemon) need at once.
 */
export const CONTAINER_CPU_SHARES = 8192;

/** Makes the engine's weighted cgroup parent (cpu hierarchy); podman makes the others itself. */
export function makeCgroupParent(name: string, root = CGROUP_ROOT): string {
  const cpu = join(root, "cpu", name);
  mkdirSync(cpu, { recursive: true });
  writeFileSync(join(cpu, "cpu.shares"), String(CONTAINER_CPU_SHARES));
  return `/${name}`;
}

/** Removes a cgroup parent from every hierarchy, deepest first (only empty cgroups can go). */
export function removeCgroupParent(parent: string, root = CGROUP_ROOT): void {
  const hierarchies = existsSync(root) ? readdirSync(root) : [];
  for (const h of hierarchies) {
    const top = join(root, h, parent);
    if (!existsSync(top)) continue;
    const dirs: string[] = [];
    const walk = (d: string) => {
      dirs.push(d);
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    };
    walk(top);
    for (const d of dirs.reverse()) {
      try {
        rmdirSync(d);
      } catch (err) {
        console.error(`# engine cleanup: rmdir ${d}: ${(err as Error).message}`);
      }
    }
  }
}

/** The configuration files of an engine rooted at `dir` (pure: unit-tested). */
export function engineConfig(dir: string, images = imageStore): Record<string, string> {
  const q = JSON.stringify;
  return {
    "containers.conf": [
      "[containers]",
      // Applies to the podman CLI; the compat API always asks for a network mode, and the
      // helpers give host or ns:<path>.
      'netns = "host"',
      'dns_servers = ["127.0.0.1"]',
      'dns_searches = ["."]',
      // Raising rlimits is not permitted here: the defaults must not ask for more than we have.
      'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
      'log_driver = "k8s-file"',
      "[network]",
      'network_backend = "cni"',
      `network_config_dir = ${q(join(dir, "networks"))}`,
      // No CNI plugins at all: the default bridge (NAT to the outside) cannot come up.
      `cni_plugin_dirs = [${q(join(dir, "no-cni-plugins"))}]`,
      "[engine]",
      // crun refuses the cgroup v1 hybrid hierarchy of these machines.
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = ${q(join(dir, "events.log"))}`,
      `tmp_dir = ${q(join(dir, "libpod"))}`,
      "",
    ].join("\n"),
    "storage.conf": [
      "[storage]",
      'driver = "overlay"',
      `graphroot = ${q(join(dir, "storage"))}`,
      `runroot = ${q(join(dir, "run"))}`,
      "[storage.options]",
      `additionalimagestores = [${q(images)}]`,
      "",
    ].join("\n"),
    "registries.conf": REGISTRIES_CONF,
  };
}

/** Environment for podman commands on the engine rooted at `dir`. */
export function podmanEnv(dir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...NO_REGISTRY_ENV,
    CONTAINERS_CONF: join(dir, "containers.conf"),
    CONTAINERS_STORAGE_CONF: join(dir, "storage.conf"),
    CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
  };
}

/** Storage flags that pin a podman command to the engine's own storage, whatever else it reads. */
export function storageFlags(dir: string): string[] {
  return [`--root=${join(dir, "storage")}`, `--runroot=${join(dir, "run")}`];
}

/** What a test process needs to reach the engine (testcontainers reads DOCKER_HOST). */
export function engineEnv(state: EngineState): Record<string, string> {
  return {
    DOCKER_HOST: `unix://${state.socket}`,
    // Ryuk's image cannot be pulled; the runner removes containers itself, by label and storage.
    TESTCONTAINERS_RYUK_DISABLED: "true",
    // A literal address: testcontainers never resolves a host name for the engine.
    TESTCONTAINERS_HOST_OVERRIDE: "127.0.0.1",
    [ENGINE_STATE_ENV]: join(state.dir, "state.json"),
  };
}

export function readEngineState(dir: string): EngineState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as EngineState;
  } catch {
    return undefined;
  }
}

/** One request to the engine's API; the JSON answer, or an error with the engine's message. */
export function engineApi<T>(socket: string, method: string, path: string, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if ((res.statusCode ?? 500) >= 300) {
          reject(new Error(`engine ${method} ${path}: ${res.statusCode} ${body.trim()}`));
          return;
        }
        try {
          resolve((body ? JSON.parse(body) : undefined) as T);
        } catch {
          resolve(body as T);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`engine ${method} ${path}: no answer in ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/**
 * Starts podman's API service in a fresh directory and waits until it answers. `images` are the
 * references the image builder made (they live in the shared read-only image store).
 */
export async function startEngine(opts: {
  ownerPid?: number;
  images: Record<string, string>;
}): Promise<EngineState> {
  const version = await podmanVersion();
  const dir = mkdtempSync(join(tmpdir(), TMP_PREFIX));
  for (const sub of ["storage", "run", "libpod", "networks", "no-cni-plugins"]) mkdirSync(join(dir, sub));
  for (const [name, text] of Object.entries(engineConfig(dir))) writeFileSync(join(dir, name), text);
  const socket = join(dir, "podman.sock");
  const logFile = join(dir, "service.log");
  const pid = startDetached(
    "podman",
    ["system", "service", "--time=0", `unix://${socket}`],
    logFile,
    podmanEnv(dir),
  ).pid;
  const label = dir.slice(dir.lastIndexOf("/") + 1);
  const state: EngineState = {
    dir,
    socket,
    servicePid: pid,
    ...(opts.ownerPid ? { ownerPid: opts.ownerPid } : {}),
    label,
    podmanVersion: version,
    images: opts.images,
    cgroupParent: makeCgroupParent(label),
  };
  writeFileSync(join(dir, "state.json"), `${JSON.stringify(state, null, 2)}\n`);
  try {
    await waitFor(
      "podman's API service to answer",
      async () => {
        if (!alive(pid)) throw new Error("podman system service exited");
        return (await engineApi<string>(socket, "GET", "/_ping", 2000)) === "OK" ? true : undefined;
      },
      30_000,
      100,
    );
  } catch (err) {
    const log = readTail(logFile);
    await stopEngine(state);
    throw new Error(`${(err as Error).message}\n${log}\nThe container engine is not usable: ${HOW_TO_FIX}`);
  }
  return state;
}

function readTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Processes (not this one) whose command line names a path inside `dir`. */
function pidsNaming(dir: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => pid !== process.pid && cmdline(pid).includes(`${dir}/`));
}

/** Mount points under `dir` (overlay layers, shm), deepest first. */
function mountsUnder(dir: string): string[] {
  const octal = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => octal(l.split(" ")[4] ?? ""))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Removes the run's containers (by its label, through podman itself so that this works after the
 * service died too), stops the service by pid, unmounts what storage left mounted and deletes the
 * directory. Safe to call twice and on a half-started engine.
 */
export async function stopEngine(state: EngineState): Promise<void> {
  // Never without our own configuration: podman would fall back to the machine's storage.
  if (Object.keys(engineConfig(state.dir)).every((f) => existsSync(join(state.dir, f)))) {
    const podman = (args: string[]) =>
      run("podman", [...storageFlags(state.dir), ...args], podmanEnv(state.dir), { timeoutMs: 60_000 });
    try {
      await podman(["rm", "--force", "--time=0", "--filter", `label=${RUN_LABEL}=${state.label}`]);
      // Anything else in this engine was started by hand or by a helper that forgot its label.
      await podman(["rm", "--all", "--force", "--time=0"]);
    } catch (err) {
      console.error(`# engine cleanup: ${(err as Error).message}`);
    }
  }
  if (alive(state.servicePid) && cmdline(state.servicePid).includes(state.socket))
    await stopPid(state.servicePid);
  // conmon monitors (an exec session's lingers for minutes) and anything else that names the
  // engine's own directory on its command line
  for (const pid of pidsNaming(state.dir)) await stopPid(pid, 2000);
  for (const m of mountsUnder(state.dir)) {
    await execFileP("umount", ["--lazy", m]).catch((err: Error) =>
      console.error(`# engine cleanup: umount ${m}: ${err.message}`),
    );
  }
  removeCgroupParent(state.cgroupParent ?? `/${state.label}`);
  rmSync(state.dir, { recursive: true, force: true });
}

/** Stops engines whose owner is gone (a killed run); returns how many. */
export async function reapEngines(): Promise<number> {
  let reaped = 0;
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(TMP_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const state = readEngineState(dir);
    if (state?.ownerPid && alive(state.ownerPid)) continue;
    if (!state?.ownerPid && state && alive(state.servicePid)) continue; // `engine up` by hand
    await stopEngine(
      state ?? {
        dir,
        socket: join(dir, "podman.sock"),
        servicePid: 0,
        label: name,
        podmanVersion: "",
        images: {},
      },
    );
    reaped++;
  }
  return reaped;
}
