import { readFileSync } from "node:fs";
import { loadavg } from "node:os";

/** Jiffies per second of /proc/<pid>/stat (USER_HZ, 100 on every Linux this runs on). */
const USER_HZ = 100;

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after the command name, which may itself hold spaces and parentheses
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return 0;
  }
}

/** Resident memory in MB: now (VmRSS) or the peak so far (VmHWM); 0 once the process is gone. */
export function rssMB(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** The 1-, 5- and 15-minute load averages, rounded: every measured figure is reported with them. */
export function loadAverage(): number[] {
  return loadavg().map((l) => Math.round(l * 100) / 100);
}

/** p-th percentile (nearest rank) of xs; NaN when empty. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** What every bench's last JSON line carries, so a script can check each target (lower is better). */
export interface Headline {
  metric: string;
  value: number;
  /** null: no target in the design, the figure is kept in view only. */
  target: number | null;
  unit: string;
  /** The peer measured in the same run, or why there is none. */
  peer: string;
}
