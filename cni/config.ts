/**
 * Turns what a runtime hands the plugin (stdin bytes and the CNI_* environment) into one
 * validated request, or a CniError with the spec's code. Pure: no I/O, so every edge of the
 * spec is unit-tested.
 */
import { isFamilyName } from "../net/index.js";
import {
  type AgentRequest,
  type CniCommand,
  CniError,
  type CniVersion,
  ErrorCode,
  SUPPORTED_VERSIONS,
  type WeftNetConf,
} from "./types.js";

export type Env = Record<string, string | undefined>;

export type Invocation =
  | { command: "VERSION"; cniVersion: string }
  | { command: CniCommand; request: AgentRequest; cniVersion: CniVersion };

const COMMANDS = new Set(["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"]);

/** Newest version we speak: what VERSION and errors use when the configuration names none. */
export const NEWEST_VERSION: CniVersion = SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1]!;

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === "string" && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Compares dotted versions numerically ("0.10.0" > "0.4.0"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function parseJSONConfig(stdin: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(
      ErrorCode.DecodingFailure,
      "cannot decode the network configuration on stdin",
      (err as Error).message,
    );
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new CniError(ErrorCode.DecodingFailure, "the network configuration on stdin is not a JSON object");
  }
  return parsed as Record<string, unknown>;
}

/** CNI_ARGS: "K1=V1;K2=V2" (IgnoreUnknown=1 style keys included). */
export function parseCniArgs(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const pair of raw.split(";")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0)
      throw new CniError(ErrorCode.InvalidEnvironment, `CNI_ARGS: malformed pair ${JSON.stringify(pair)}`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

// The spec's rules for container ids and interface names (libcni validates the same way).
const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function validateIfname(name: string): void {
  if (name === "" || name.length > 15 || name === "." || name === ".." || /[/:\s]/.test(name)) {
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      `CNI_IFNAME ${JSON.stringify(name)} is not a valid interface name`,
    );
  }
}

function requireEnv(env: Env, key: string): string {
  const v = env[key];
  if (v === undefined || v === "") throw new CniError(ErrorCode.InvalidEnvironment, `${key} is not set`);
  return v;
}

function validateConfig(conf: Record<string, unknown>): WeftNetConf {
  const v = conf.cniVersion;
  if (v === undefined) throw new CniError(ErrorCode.InvalidNetworkConfig, "cniVersion is missing");
  if (!isSupportedVersion(v)) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `CNI version ${JSON.stringify(v)} is not supported`,
      `supported versions: ${SUPPORTED_VERSIONS.join(", ")}`,
    );
  }
  if (typeof conf.name !== "string" || conf.name === "") {
    throw new CniError(ErrorCode.InvalidNetworkConfig, "network configuration field 'name' is missing");
  }
  if (typeof conf.type !== "string" || conf.type === "") {
    throw new CniError(ErrorCode.InvalidNetworkConfig, "network configuration field 'type' is missing");
  }
  if (conf.agentSocket !== undefined && (typeof conf.agentSocket !== "string" || conf.agentSocket === "")) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, "'agentSocket' must be a non-empty path");
  }
  if (conf.timeoutMs !== undefined && !(typeof conf.timeoutMs === "number" && conf.timeoutMs > 0)) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, "'timeoutMs' must be a positive number");
  }
  if (conf.mtu !== undefined && !(Number.isInteger(conf.mtu) && (conf.mtu as number) >= 68)) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, "'mtu' must be an integer >= 68");
  }
  if (conf.families !== undefined) {
    const f = conf.families;
    if (!Array.isArray(f) || f.length === 0 || !f.every(isFamilyName)) {
      throw new CniError(ErrorCode.InvalidNetworkConfig, "'families' must be a non-empty list of ipv4, ipv6");
    }
  }
  return conf as WeftNetConf;
}

/** Commands that exist only from a given spec version on. */
const MIN_VERSION: Partial<Record<CniCommand, string>> = { CHECK: "0.4.0", STATUS: "1.1.0", GC: "1.1.0" };

export function parseInvocation(env: Env, stdin: string): Invocation {
  const command = env.CNI_COMMAND;
  if (!command) throw new CniError(ErrorCode.InvalidEnvironment, "CNI_COMMAND is not set");
  if (!COMMANDS.has(command)) {
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      `CNI_COMMAND ${JSON.stringify(command)} is not supported`,
    );
  }
  if (command === "VERSION") {
    // Runtimes send {"cniVersion": "..."} (or nothing); the answer names the version asked for.
    let asked: unknown;
    if (stdin.trim() !== "") asked = parseJSONConfig(stdin).cniVersion;
    return { command, cniVersion: typeof asked === "string" && asked !== "" ? asked : NEWEST_VERSION };
  }
  const config = validateConfig(parseJSONConfig(stdin));
  const cmd = command as CniCommand;
  const min = MIN_VERSION[cmd];
  if (min && compareVersions(config.cniVersion, min) < 0) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `${cmd} needs cniVersion ${min} or later, the configuration says ${config.cniVersion}`,
    );
  }
  let containerId = "";
  let ifname = "";
  let netns = "";
  if (cmd === "ADD" || cmd === "DEL" || cmd === "CHECK") {
    containerId = requireEnv(env, "CNI_CONTAINERID");
    if (!CONTAINER_ID_RE.test(containerId)) {
      throw new CniError(
        ErrorCode.InvalidEnvironment,
        `CNI_CONTAINERID ${JSON.stringify(containerId)} is not valid`,
      );
    }
    ifname = requireEnv(env, "CNI_IFNAME");
    validateIfname(ifname);
    // DEL must work after the sandbox is gone, so it is the one command without a netns.
    netns = cmd === "DEL" ? (env.CNI_NETNS ?? "") : requireEnv(env, "CNI_NETNS");
  }
  const args = parseCniArgs(env.CNI_ARGS);
  return {
    command: cmd,
    cniVersion: config.cniVersion as CniVersion,
    request: { command: cmd, containerId, netns, ifname, args, config },
  };
}
