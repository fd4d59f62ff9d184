/**
 * Every failure of the IPAM library is an IpamError with a stable code, so callers (agent, CNI,
 * controller) can map it to a CNI error code or a condition without parsing messages. Messages
 * are written for humans and name the pool(s) and the node involved.
 */
export type IpamErrorCode =
  | "InvalidAddress"
  | "InvalidCidr"
  | "InvalidPool"
  | "InvalidBlock"
  | "NoMatchingPool"
  | "Exhausted"
  | "NodeSubnetMissing"
  /** A weft.dev/ annotation of the pod or its namespace cannot be read (bad JSON, wrong family). */
  | "InvalidAnnotation"
  /** A pool the pod names does not exist, is disabled, or does not give addresses to the node. */
  | "PoolNotUsable"
  /** A fixed address lies outside every pool. */
  | "AddressOutsidePools"
  /** A fixed address is held by another pod or node. */
  | "AddressInUse"
  /** A fixed address lies where this node may not take it (another node's block, a full quota). */
  | "AddressUnavailable";

export class IpamError extends Error {
  override readonly name = "IpamError";
  constructor(
    readonly code: IpamErrorCode,
    message: string,
    /** Pools the error is about (empty when none apply). */
    readonly pools: readonly string[] = [],
    /** Node the error is about, when there is one. */
    readonly node?: string,
  ) {
    super(message);
  }
}

export function isIpamError(e: unknown, code?: IpamErrorCode): e is IpamError {
  return e instanceof IpamError && (code === undefined || e.code === code);
}
