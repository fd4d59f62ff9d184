import { execFileSync, spawn } from "node:child_process";
import { openSync, readFileSync } from "node:fs";

export interface Started {
  pid: number;
  logFile: string;
}

/**
 * Starts a long-running process in its own process group, output to a log file, detached so it
 * can outlive the starter (make cluster-up). It is stopped by pid, never by name.
 */
export function startDetached(
  cmd: string,
  args: string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): Started {
  const out = openSync(logFile, "a");
  const child = spawn(cmd, args, { detached: true, stdio: ["ignore", out, out], env: env ?? process.env });
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  child.unref();
  return { pid: child.pid, logFile };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // a zombie has exited even though its pid still answers
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** Command line of a pid, or "" when it is gone. */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopPid(pid: number, graceMs = 5000): Promise<void> {
  if (!alive(pid)) return;
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pid, s); // the whole group it leads
    } catch {
      try {
        process.kill(pid, s);
      } catch {
        /* already gone */
      }
    }
  };
  signal("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    signal("SIGKILL");
    while (alive(pid)) await sleep(20);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value other than undefined, or fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

/** Runs a command to completion and returns its stdout; a failure throws with stderr attached. */
export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, {
    encoding: "utf8",
    input,
    stdio: ["pipe", "pipe", "pipe"],
    maxBuffer: 512 << 20,
  });
}
