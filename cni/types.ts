/**
 * The CNI wire types (spec 1.0.0 / 1.1.0, with the 0.3.x and 0.4.0 result shapes) and the
 * request the plugin forwards to the agent. Shared by the plugin and the agent's server, so it
 * must stay free of runtime imports: it ends up in the plugin's bundle.
 */
import type { FamilyName } from "../net/index.js";

/** Versions this plugin accepts in a network configuration, oldest first. */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** Error codes from the CNI spec ("Error" section); 1-99 are reserved for the spec. */
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IOFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  /** STATUS (1.1): the plugin cannot service ADD requests. */
  PluginNotAvailable: 50,
  /** Weft: a weft.dev/ IPAM annotation of the pod or its namespace cannot be used (bad JSON, wrong family, no such address). */
  InvalidPodAnnotation: 101,
  /** Weft: a pool the pod names does not exist, is disabled or does not give addresses to this node. */
  PoolNotUsable: 102,
  /** Weft: the pod's fixed address is held by another pod or lies where this node may not take it. */
  AddressUnavailable: 103,
  /** Anything that is not one of the above: plugin-specific codes start at 100; we use 999. */
  Internal: 999,
} as const;

export interface CniErrorJSON {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** A failure that becomes CNI error JSON on stdout; its message is for operators, never a stack. */
export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details?: string,
  ) {
    super(msg);
    this.name = "CniError";
  }

  /** A CniError as it is, anything else as an internal error (999) that keeps its message as details. */
  static from(err: unknown, msg: string): CniError {
    if (err instanceof CniError) return err;
    return new CniError(ErrorCode.Internal, msg, err instanceof Error ? err.message : String(err));
  }

  toJSON(cniVersion: string): CniErrorJSON {
    const out: CniErrorJSON = { cniVersion, code: this.code, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIPConfig {
  /** CIDR notation: the pod's address with its prefix length (/32, /128 for weft). */
  address: string;
  gateway?: string;
  /** index into `interfaces` */
  interface?: number;
  /** only in 0.3.x / 0.4.0 results */
  version?: "4" | "6";
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIPConfig[];
  routes?: CniRoute[];
  dns?: CniDNS;
}

export type CniCommand = "ADD" | "DEL" | "CHECK" | "STATUS" | "GC";

/** The network configuration fields weft reads (the rest passes through untouched). */
export interface WeftNetConf {
  cniVersion: string;
  name: string;
  type: string;
  /** unix socket of the local agent */
  agentSocket?: string;
  /** request timeout towards the agent, ms */
  timeoutMs?: number;
  mtu?: number;
  /** address families to assign; default ["ipv4"] */
  families?: FamilyName[];
  prevResult?: unknown;
  dns?: CniDNS;
  args?: Record<string, unknown>;
  runtimeConfig?: Record<string, unknown>;
  /** GC (1.1): attachments the runtime still knows about */
  "cni.dev/valid-attachments"?: Array<{ containerID: string; ifname: string }>;
  [k: string]: unknown;
}

/** What the plugin sends the agent: the CNI_* environment plus the parsed configuration. */
export interface AgentRequest {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS as key/value pairs (K8S_POD_NAMESPACE, K8S_POD_NAME, ...) */
  args: Record<string, string>;
  config: WeftNetConf;
}

/** What the agent answers: a result in the 1.0.0 shape (the plugin converts), or an error. */
export type AgentResponse = { result?: CniResult; error?: { code: number; msg: string; details?: string } };

export const DEFAULT_AGENT_SOCKET = "/var/run/weft/agent.sock";
