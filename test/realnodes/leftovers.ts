import { readdirSync, readFileSync } from "node:fs";
import { cmdline } from "../../devenv/procs.js";
import { ip } from "../../devenv/topology.js";

/**
 * What a real-node cluster may change on the machine, read before and after it ran: the
 * sysctls kubelet would rewrite, and anything of the cluster left behind.
 */

export const GUARDED_SYSCTLS = ["vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"];

export function readSysctls(): Record<string, string> {
  return Object.fromEntries(GUARDED_SYSCTLS.map((k) => [k, readFileSync(`/proc/sys/${k}`, "utf8").trim()]));
}

/** Namespaces, mounts, cgroups and processes that still carry the cluster's id or directory. */
export async function leftovers(id: string, dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const line of (await ip(["netns", "list"])).split("\n"))
    if (line.startsWith(`${id}-`)) found.push(`netns ${line.split(" ")[0]}`);
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n"))
    if (line.includes(dir) || line.includes(`/${id}-`)) found.push(`mount ${line}`);
  for (const h of readdirSync("/sys/fs/cgroup")) {
    try {
      for (const d of readdirSync(`/sys/fs/cgroup/${h}`))
        if (d.startsWith(`${id}-`)) found.push(`cgroup ${h}/${d}`);
    } catch {
      /* not a directory */
    }
  }
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmd = cmdline(Number(entry));
    if (cmd.includes(dir)) found.push(`process ${entry}: ${cmd.slice(0, 200)}`);
  }
  return found;
}
