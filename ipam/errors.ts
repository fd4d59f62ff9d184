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
  | "NodeSubnetMissing";

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
