/**
 * One plugin invocation, from (environment, stdin) to (stdout, exit code). VERSION is answered
 * locally; everything else is forwarded to the agent, whose 1.0.0-shaped result is converted to
 * the configuration's version and merged after a previous plugin's result.
 */
import { callAgent } from "./client.js";
import { type Env, isSupportedVersion, NEWEST_VERSION, parseInvocation } from "./config.js";
import { convertResult, mergeResults, normalizePrevResult } from "./result.js";
import {
  type AgentRequest,
  type AgentResponse,
  CniError,
  DEFAULT_AGENT_SOCKET,
  ErrorCode,
  SUPPORTED_VERSIONS,
} from "./types.js";

export interface PluginOutput {
  stdout: string;
  exitCode: number;
}

const DEFAULT_TIMEOUT_MS = 120_000;

/** Best effort: the version the configuration asked for, so that errors answer in it. */
function versionForErrors(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    if (isSupportedVersion(v)) return v;
  } catch {
    /* undecodable: fall back to the newest */
  }
  return NEWEST_VERSION;
}

/** How a parsed request reaches the agent: over its socket (the plugin) or in-process (the agent). */
export type AgentCall = (request: AgentRequest) => Promise<AgentResponse>;

export const callOverSocket: AgentCall = (request) =>
  callAgent(
    request.config.agentSocket ?? DEFAULT_AGENT_SOCKET,
    `/v1/cni/${request.command.toLowerCase()}`,
    request,
    request.config.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  );

export async function runPlugin(
  env: Env,
  stdin: string,
  call: AgentCall = callOverSocket,
): Promise<PluginOutput> {
  try {
    const inv = parseInvocation(env, stdin);
    if (inv.command === "VERSION") {
      const out = { cniVersion: inv.cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] };
      return { stdout: `${JSON.stringify(out)}\n`, exitCode: 0 };
    }
    const { request, cniVersion } = inv;
    const prev = request.command === "ADD" ? normalizePrevResult(request.config.prevResult) : undefined;
    const res = await call(request);
    if (res.error) {
      // STATUS reports unavailability with its own code; the agent's answer is passed through.
      throw new CniError(res.error.code, res.error.msg, res.error.details);
    }
    if (request.command !== "ADD") return { stdout: "", exitCode: 0 };
    if (!res.result) throw new CniError(ErrorCode.Internal, "the agent answered ADD without a result");
    const result = convertResult(mergeResults(prev, res.result), cniVersion);
    return { stdout: `${JSON.stringify(result)}\n`, exitCode: 0 };
  } catch (err) {
    const e = CniError.from(err, "weft-cni failed");
    return { stdout: `${JSON.stringify(e.toJSON(versionForErrors(stdin)))}\n`, exitCode: 1 };
  }
}
