/**
 * A period spread by ±`fraction` (default 10%). Agents a DaemonSet rollout starts in the same
 * second would otherwise run their periodic work (full kernel resync, status rewrite) in step,
 * every period, as one burst on the node and on the apiserver; slightly different periods make
 * them drift apart.
 */
export function jittered(periodMs: number, fraction = 0.1, random: () => number = Math.random): number {
  return Math.round(periodMs * (1 - fraction + 2 * fraction * random()));
}
