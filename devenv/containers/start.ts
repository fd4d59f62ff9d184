import { existsSync, readFileSync, statSync } from "node:fs";
import { GenericContainer, type StartedTestContainer } from "testcontainers";
import { ENGINE_STATE_ENV, type EngineState, engineApi, RUN_LABEL } from "./engine.js";
import type { ImageName } from "./images.js";
import { CONTAINERS_ENV, HOW_TO_FIX } from "./mode.js";

/**
 * Starts the test containers through testcontainers, on the run's engine, in one of the two
 * networks a container may have here: the machine's own (`host`: it listens on 127.0.0.1 like a
 * local binary would) or a network namespace the test made. Nothing else: no bridge, no NAT.
 */
export type ContainerNetwork = { host: true } | { netns: string };

export interface ContainerSpec {
  image: ImageName;
  /** Short role name; the container is named weft-<role>-<pid>-<n>. */
  role: string;
  network: ContainerNetwork;
  command?: string[];
  bindMounts?: Array<{ source: string; target: string; mode?: "ro" | "rw" }>;
  capabilities?: string[];
}

/** The engine the suite runner started for this run (a clear error when there is none). */
export function testEngine(env: NodeJS.ProcessEnv = process.env): EngineState {
  const path = env[ENGINE_STATE_ENV];
  if (!path) {
    throw new Error(
      `${ENGINE_STATE_ENV} is not set: this test starts its servers as containers, on the engine that ` +
        `'make test' (node dist/test/run-suite.js) starts, or 'make engine-up' for a single file. ` +
        `To use local binaries instead, set ${CONTAINERS_ENV}=off.`,
    );
  }
  if (!existsSync(path))
    throw new Error(`${path} (${ENGINE_STATE_ENV}) does not exist: the engine is gone; ${HOW_TO_FIX}`);
  return JSON.parse(readFileSync(path, "utf8")) as EngineState;
}

export function networkMode(net: ContainerNetwork): string {
  if ("host" in net) return "host";
  if (!/^[A-Za-z0-9_.-]+$/.test(net.netns)) throw new Error(`not a network namespace name: ${net.netns}`);
  return `ns:/run/netns/${net.netns}`;
}

/** Inode of the network namespace a path refers to (/proc/PID/ns/net or /run/netns/NAME). */
export function netnsInode(path: string): number {
  return statSync(path).ino;
}

let started = 0;

/** A container placed under the engine's weighted cgroup parent (see CONTAINER_CPU_SHARES). */
class WeightedContainer extends GenericContainer {
  constructor(image: string, cgroupParent: string | undefined) {
    super(image);
    if (cgroupParent) this.hostConfig.CgroupParent = cgroupParent;
  }
}

/**
 * Starts a container and proves it sits in the network namespace it was given (the machine's
 * own for `host`); logs one line with its image. Fails with how to fix it when the engine or the
 * image is missing.
 */
export async function startContainer(spec: ContainerSpec): Promise<StartedTestContainer> {
  const engine = testEngine();
  const ref = engine.images[spec.image];
  if (!ref)
    throw new Error(`the run's engine has no ${spec.image} image (images: ${JSON.stringify(engine.images)})`);
  const mode = networkMode(spec.network);
  const name = `weft-${spec.role}-${process.pid}-${++started}`;
  let c = new WeightedContainer(ref, engine.cgroupParent)
    .withName(name)
    .withNetworkMode(mode)
    .withLabels({ [RUN_LABEL]: engine.label })
    .withStartupTimeout(60_000);
  if (spec.command) c = c.withCommand(spec.command);
  if (spec.bindMounts) c = c.withBindMounts(spec.bindMounts.map((m) => ({ mode: "rw", ...m })));
  if (spec.capabilities) c = c.withAddedCapabilities(...spec.capabilities);
  const t0 = Date.now();
  let container: StartedTestContainer;
  try {
    container = await c.start();
  } catch (err) {
    throw new Error(
      `starting ${name} from ${ref} on ${engine.socket}: ${(err as Error).message}\n${HOW_TO_FIX}`,
    );
  }
  const ms = Date.now() - t0;
  try {
    const pid = await containerPid(engine, container.getId());
    const want = netnsInode(
      "host" in spec.network ? "/proc/self/ns/net" : `/run/netns/${spec.network.netns}`,
    );
    const got = netnsInode(`/proc/${pid}/ns/net`);
    if (got !== want)
      throw new Error(`${name} runs in network namespace ${got}, not the ${mode} one (${want})`);
  } catch (err) {
    await container.stop({ timeout: 0 }).catch(() => {});
    throw err;
  }
  console.log(`container ${name} started from ${ref} (network ${mode}) in ${ms} ms`);
  return container;
}

/** The host pid of a container's first process. */
export async function containerPid(engine: EngineState, id: string): Promise<number> {
  const info = await engineApi<{ State: { Pid: number; Running: boolean } }>(
    engine.socket,
    "GET",
    `/containers/${id}/json`,
  );
  if (!info.State.Running || !info.State.Pid) throw new Error(`container ${id} is not running`);
  return info.State.Pid;
}

/** Whether a container is still running (false once it exited or is gone). */
export async function containerRunning(id: string): Promise<boolean> {
  try {
    await containerPid(testEngine(), id);
    return true;
  } catch {
    return false;
  }
}

/** What a container wrote so far (stdout and stderr), for error messages. */
export async function containerLogs(c: StartedTestContainer): Promise<string> {
  try {
    const stream = await c.logs();
    return await new Promise<string>((resolve) => {
      const chunks: string[] = [];
      // The stream follows a running container: take what came within a moment. The timer is
      // what keeps the process alive meanwhile (the engine's socket does not).
      const timer = setTimeout(() => done(), 1000);
      const done = () => {
        clearTimeout(timer);
        stream.destroy();
        resolve(chunks.join(""));
      };
      stream.on("data", (d: Buffer | string) => chunks.push(d.toString()));
      stream.on("end", done);
      stream.on("error", done);
    });
  } catch (err) {
    return `(no logs: ${(err as Error).message})`;
  }
}
