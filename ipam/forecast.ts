import { POOL_DEFAULTS } from "../api/index.js";
import type { PoolUsage } from "./stats.js";

/**
 * Whether a pool is about to run out, before it does: the share of its blocks or addresses in use
 * against a threshold, and a forecast of when the last free block goes at the rate nodes claimed
 * blocks over the last hour. Blocks are what runs out first in practice: a node whose blocks are
 * full needs a free block (strictAffinity), however many addresses other nodes' blocks still have.
 */
export interface ExhaustionInput {
  usage: PoolUsage;
  /** Blocks claimed in the last hour. */
  blocksLastHour: number;
  /** Percent of blocks or addresses in use from which the pool warns (default 90). */
  usedPercent?: number;
  /** Warn when the free blocks last fewer hours than this at the current rate (default 24; 0: off). */
  forecastHours?: number;
  now: Date;
}

export interface ExhaustionOutlook {
  nearlyExhausted: boolean;
  /** CamelCase reason for the NearlyExhausted condition. */
  reason: "BlocksNearlyUsed" | "AddressesNearlyUsed" | "ForecastExhaustion" | "Plenty";
  message: string;
  /** When the last free block goes at the current rate (to the minute); unset at rate 0. */
  blocksExhaustedAt?: Date;
  /** Hours until then (fractional); unset at rate 0. */
  hoursLeft?: number;
}

/** Percent with one decimal, exact for bigints (IPv6 pools). */
function percentOf(used: bigint, total: bigint): number {
  if (total === 0n) return 100;
  return Number((used * 1000n) / total) / 10;
}

function hours(h: number): string {
  if (h < 1) return `${Math.max(1, Math.round(h * 60))} minute(s)`;
  if (h < 48) return `${Math.round(h * 10) / 10} hour(s)`;
  return `${Math.round(h / 24)} day(s)`;
}

export function exhaustionOutlook(input: ExhaustionInput): ExhaustionOutlook {
  const { usage } = input;
  const threshold = input.usedPercent ?? POOL_DEFAULTS.warnUsedPercent;
  const horizon = input.forecastHours ?? POOL_DEFAULTS.warnForecastHours;
  const blocksFree = usage.blocksTotal - BigInt(usage.blocksUsed);
  const blockShare = percentOf(BigInt(usage.blocksUsed), usage.blocksTotal);
  const addressShare = percentOf(BigInt(usage.addressesUsed), usage.addressesTotal);
  const out: Pick<ExhaustionOutlook, "blocksExhaustedAt" | "hoursLeft"> = {};
  if (input.blocksLastHour > 0) {
    const h = Number(blocksFree) / input.blocksLastHour;
    out.hoursLeft = h;
    // An IPv6 pool lasts for ages: the date is capped (about a thousand years) to stay a date.
    const at = new Date(input.now.getTime() + Math.min(h, 1e7) * 3_600_000);
    at.setUTCSeconds(0, 0);
    out.blocksExhaustedAt = at;
  }
  const summary =
    `${usage.blocksUsed} of ${usage.blocksTotal} blocks (${blockShare}%) and ` +
    `${usage.addressesUsed} of ${usage.addressesTotal} addresses (${addressShare}%) in use`;
  if (blockShare >= threshold) {
    return {
      nearlyExhausted: true,
      reason: "BlocksNearlyUsed",
      message: `${summary}: blocks at or above the ${threshold}% warning threshold; add a pool or grow this one`,
      ...out,
    };
  }
  if (addressShare >= threshold) {
    return {
      nearlyExhausted: true,
      reason: "AddressesNearlyUsed",
      message: `${summary}: addresses at or above the ${threshold}% warning threshold; add a pool or grow this one`,
      ...out,
    };
  }
  if (horizon > 0 && out.hoursLeft !== undefined && out.hoursLeft < horizon) {
    return {
      nearlyExhausted: true,
      reason: "ForecastExhaustion",
      message:
        `${summary}; at ${input.blocksLastHour} block claim(s) in the last hour the ${blocksFree} free ` +
        `block(s) last ${hours(out.hoursLeft)}, less than the ${horizon} hour(s) warning horizon`,
      ...out,
    };
  }
  return {
    nearlyExhausted: false,
    reason: "Plenty",
    message:
      `${summary}` +
      (out.hoursLeft !== undefined
        ? `; at ${input.blocksLastHour} block claim(s) in the last hour the free blocks last ${hours(out.hoursLeft)}`
        : "; no block claimed in the last hour"),
    ...out,
  };
}
