import {
  type Address,
  AddressError,
  type Cidr,
  parseCidr as netParseCidr,
  parseIP as netParseIP,
} from "../net/index.js";
import { IpamError } from "./errors.js";

/**
 * The IPAM's view of net/: the same parsers, but a bad address or CIDR is an IpamError
 * (InvalidAddress, InvalidCidr), which the IPAM's callers already handle.
 */
function asIpamError<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof AddressError) throw new IpamError(e.code, e.message);
    throw e;
  }
}

export function parseIP(s: string): Address {
  return asIpamError(() => netParseIP(s));
}

export function parseCidr(s: string, strict = true): Cidr {
  return asIpamError(() => netParseCidr(s, strict));
}
