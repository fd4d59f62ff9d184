/**
 * Result shapes across spec versions, and chaining. The agent always answers in the 1.0.0 shape;
 * the plugin converts to what the configuration asked for and merges a previous plugin's result.
 * Pure.
 */
import { familyOfValid } from "../net/index.js";
import { compareVersions } from "./config.js";
import { CniError, type CniIPConfig, type CniResult, ErrorCode } from "./types.js";

/** 0.3.x and 0.4.0 tag every IP with its family; 1.0.0 dropped the tag. */
export function convertResult(result: CniResult, cniVersion: string): CniResult {
  const legacy = compareVersions(cniVersion, "1.0.0") < 0;
  const ips = result.ips?.map((ip): CniIPConfig => {
    const { version: _drop, ...rest } = ip;
    return legacy ? { ...rest, version: familyOfValid(ip.address) === 6 ? "6" : "4" } : rest;
  });
  const out: CniResult = { cniVersion };
  if (result.interfaces) out.interfaces = result.interfaces;
  if (ips) out.ips = ips;
  if (result.routes) out.routes = result.routes;
  out.dns = result.dns ?? {};
  return out;
}

/** Reads a prevResult of any supported version into the 1.0.0 shape. */
export function normalizePrevResult(prev: unknown): CniResult | undefined {
  if (prev === undefined || prev === null) return undefined;
  if (typeof prev !== "object" || Array.isArray(prev)) {
    throw new CniError(ErrorCode.DecodingFailure, "prevResult is not a JSON object");
  }
  const p = prev as CniResult;
  if (p.ips !== undefined && !Array.isArray(p.ips)) {
    throw new CniError(ErrorCode.DecodingFailure, "prevResult.ips is not a list");
  }
  if (p.interfaces !== undefined && !Array.isArray(p.interfaces)) {
    throw new CniError(ErrorCode.DecodingFailure, "prevResult.interfaces is not a list");
  }
  return convertResult(p, "1.0.0");
}

/**
 * Weft's own result appended to a previous plugin's (when weft is not first in a chain):
 * interfaces are concatenated, so our IP entries' interface indices move past the earlier ones.
 */
export function mergeResults(prev: CniResult | undefined, ours: CniResult): CniResult {
  if (!prev) return ours;
  const offset = prev.interfaces?.length ?? 0;
  const out: CniResult = {
    cniVersion: ours.cniVersion,
    interfaces: [...(prev.interfaces ?? []), ...(ours.interfaces ?? [])],
    ips: [
      ...(prev.ips ?? []),
      ...(ours.ips ?? []).map((ip) =>
        ip.interface === undefined ? ip : { ...ip, interface: ip.interface + offset },
      ),
    ],
    routes: [...(prev.routes ?? []), ...(ours.routes ?? [])],
    dns: prev.dns && Object.keys(prev.dns).length ? prev.dns : (ours.dns ?? {}),
  };
  return out;
}
