/**
 * Exponential backoff with full jitter: attempt n (0-based) waits a uniform random time in
 * [0, min(max, base * 2^n)]. Full jitter spreads competing writers apart, which is what turns a
 * compare-and-swap storm into a queue.
 */
export function jitteredBackoff(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** Exponential backoff without jitter, capped: base * 2^attempt. */
export function exponentialBackoff(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
