import type { IPAMBlock } from "../../api/index.js";

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/**
 * Addresses handed out per pool over the last hour, as seen in the blocks' sequence numbers
 * (every assignment raises its block's sequence by one): minute buckets, pruned as they age. A
 * block that appears with a creation time inside the hour brings its whole sequence; older blocks
 * seen at start-up count nothing, so after a restart the count covers less than an hour.
 */
export class ClaimCounter {
  private readonly buckets = new Map<string, Map<number, number>>();

  observe(pool: string, count: number, at: number): void {
    if (count <= 0) return;
    const minute = Math.floor(at / MINUTE_MS);
    let b = this.buckets.get(pool);
    if (!b) {
      b = new Map();
      this.buckets.set(pool, b);
    }
    b.set(minute, (b.get(minute) ?? 0) + count);
  }

  /** Addresses handed out in the pool within the hour before `now`. */
  lastHour(pool: string, now: number): number {
    const b = this.buckets.get(pool);
    if (!b) return 0;
    const oldest = Math.floor((now - HOUR_MS) / MINUTE_MS);
    let sum = 0;
    for (const [minute, n] of b) {
      if (minute <= oldest) b.delete(minute);
      else sum += n;
    }
    if (b.size === 0) this.buckets.delete(pool);
    return sum;
  }

  /** What one block event adds: the sequence delta of an update, the whole sequence of a new block. */
  blockAdded(b: IPAMBlock, now: number): void {
    const created = b.metadata.creationTimestamp ? new Date(b.metadata.creationTimestamp).getTime() : 0;
    if (now - created <= HOUR_MS) this.observe(b.spec.pool, b.spec.sequence, now);
  }

  blockUpdated(old: IPAMBlock, b: IPAMBlock, now: number): void {
    if (old === b) return;
    this.observe(b.spec.pool, b.spec.sequence - old.spec.sequence, now);
  }
}
