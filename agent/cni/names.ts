/**
 * Names and constants of a pod's wiring (docs/architecture.md, "Names"). Deterministic from the sandbox id, so
 * that a restarted agent finds what an earlier one made without keeping any state of its own.
 */
import { createHash } from "node:crypto";
import { bytesToMAC } from "../../netlink/index.js";

/** Every host-side veth has this MAC (as Calico does): the pod's fixed neighbor entry points at it. */
export const HOST_VETH_MAC = "ee:ee:ee:ee:ee:ee";
/** The pod's IPv4 default gateway: never on the wire, answered by the permanent neighbor entry. */
export const GATEWAY_V4 = "169.254.1.1";
/** The host veth's EUI-64 link-local address for HOST_VETH_MAC: the pod's IPv6 gateway. */
export const GATEWAY_V6 = "fe80::ecee:eeff:feee:eeee";

export const HOST_VETH_PREFIX = "weft";

function sha256hex(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

/**
 * `weft` + 11 hex chars of sha256(sandbox id): 15 characters, the kernel's limit. An extra
 * interface of the same sandbox (not eth0) hashes the id together with its name.
 */
export function hostVethName(containerId: string, ifname = "eth0"): string {
  const key = ifname === "eth0" ? containerId : `${containerId}.${ifname}`;
  return HOST_VETH_PREFIX + sha256hex(key).slice(0, 11);
}

/** One IPAM handle per sandbox and interface. */
export function podHandle(containerId: string, ifname: string): string {
  return `${containerId}.${ifname}`;
}

/**
 * The pod side's MAC, derived from the handle (locally administered, unicast), so that ADD
 * repeated, or after an agent restart, answers with the same result.
 */
export function podMac(containerId: string, ifname: string): string {
  const h = Buffer.from(sha256hex(`mac:${podHandle(containerId, ifname)}`).slice(0, 12), "hex");
  h[0] = (h[0]! & 0xfc) | 0x02;
  return bytesToMAC(h);
}
