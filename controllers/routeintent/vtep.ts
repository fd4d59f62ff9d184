import { createHash } from "node:crypto";

/** Name of the VXLAN device on every node (DESIGN.md "Names"). */
export const VXLAN_DEVICE = "weft.vxlan";

/**
 * A stable VTEP MAC derived from the node name, so a restarted or re-joined node keeps its MAC and
 * no FDB/ARP entry elsewhere goes stale. Locally administered, unicast.
 */
export function vtepMAC(node: string): string {
  const h = createHash("sha256").update(`weft-vtep:${node}`).digest();
  const bytes = [...h.subarray(0, 6)];
  bytes[0] = ((bytes[0] ?? 0) & 0xfe) | 0x02;
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}
