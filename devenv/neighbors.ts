import { readFileSync, writeFileSync } from "node:fs";

/**
 * The kernel's ARP table is one table for every network namespace, with global limits
 * (net.ipv4.neigh.default.gc_thresh1/2/3, 128/512/1024 by default): N simulated nodes on one
 * underlay bridge need about N(N-1) entries, so at 50 nodes (2,450) the table overflows, ARP
 * fails with ENOBUFS and BGP sessions die of hold-timer expiry. Real nodes each have their own
 * kernel; a benchmark that puts many in one raises the limits for its run and puts them back.
 */
const KEYS = ["gc_thresh1", "gc_thresh2", "gc_thresh3"] as const;
const path = (k: string) => `/proc/sys/net/ipv4/neigh/default/${k}`;

/** Raises the limits so `entries` fit (never lowers them); returns what puts the old values back. */
export function ensureNeighborCapacity(entries: number): { raised: boolean; restore(): void } {
  const before = KEYS.map((k) => Number(readFileSync(path(k), "utf8").trim()));
  const [, , thresh3] = before as [number, number, number];
  if (thresh3 >= entries * 2) return { raised: false, restore: () => undefined };
  const want = [entries / 2, entries, entries * 2].map(Math.ceil);
  // thresh3 first going up (each must stay <= the next), so write from the top down
  for (let i = KEYS.length - 1; i >= 0; i--)
    writeFileSync(path(KEYS[i]!), String(Math.max(want[i]!, before[i]!)));
  return {
    raised: true,
    restore() {
      for (let i = 0; i < KEYS.length; i++) writeFileSync(path(KEYS[i]!), String(before[i]));
    },
  };
}
