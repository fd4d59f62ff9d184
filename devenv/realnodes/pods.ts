import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cmdline } from "../procs.js";
import type { RealNodeState } from "./cluster.js";
import { NodeCgroups } from "./host.js";

/**
 * A pod's processes found on the host without asking the apiserver (which a fault may have
 * stopped): the kubelet (cgroupfs driver) puts every pod in `<cgroupRoot>/kubepods[/<qos>]/pod<UID>`
 * with one child cgroup per container, the sandbox's pause process included.
 */

function findDir(dir: string, name: string, depth: number): string | undefined {
  if (!existsSync(dir) || depth < 0) return undefined;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    if (e.name === name) return join(dir, e.name);
    const found = findDir(join(dir, e.name), name, depth - 1);
    if (found) return found;
  }
  return undefined;
}

function procs(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8")
      .split("\n")
      .filter((l) => l.trim())
      .map(Number);
  } catch {
    return [];
  }
}

/** The pod's cgroup directory in one hierarchy (the kubelet makes them in every one). */
function podCgroupDir(node: RealNodeState, podUID: string): string | undefined {
  const cg = new NodeCgroups(node.cgroupRoot);
  const pidsRoot = cg.dirs().find((d) => d.includes("/pids/")) ?? cg.dirs()[0];
  return pidsRoot ? findDir(join(pidsRoot, "kubepods"), `pod${podUID}`, 2) : undefined;
}

/** Every process of the pod, per container cgroup (the directory name is the container id). */
export function podProcesses(node: RealNodeState, podUID: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const dir = podCgroupDir(node, podUID);
  if (!dir) return out;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) out.set(e.name, procs(join(dir, e.name)));
  return out;
}

/** A process inside the pod's network namespace: its sandbox's pause process, else any of its processes. */
export function podNetnsPid(node: RealNodeState, podUID: string): number | undefined {
  const all = [...podProcesses(node, podUID).values()].flat();
  return all.find((pid) => cmdline(pid).trim() === "/pause") ?? all[0];
}

/**
 * The processes of the pod's containers other than the sandbox (what a container restart ends);
 * the pause process is left alone so that the sandbox and its network namespace stay.
 */
export function podContainerPids(node: RealNodeState, podUID: string): number[] {
  const out: number[] = [];
  for (const pids of podProcesses(node, podUID).values()) {
    if (pids.some((pid) => cmdline(pid).trim() === "/pause")) continue;
    out.push(...pids);
  }
  return out;
}
