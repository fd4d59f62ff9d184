import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { alive, sleep } from "../procs.js";

/**
 * Runs `fn` holding an exclusive lock file (several checkouts share the image store). The file
 * holds the owner's pid; a lock whose owner died is taken over.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, waitMs = 30 * 60_000): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: "wx" });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      // Empty: its owner has created it and not yet written its pid.
      const owner = Number(readFileSync(path, "utf8").trim() || String(process.pid));
      if (owner !== process.pid && !alive(owner)) {
        rmSync(path, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${path} is held by pid ${owner} for too long`);
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}
