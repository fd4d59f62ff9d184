import { createHash } from "node:crypto";
import { type Family, familyLabel, tryCanonicalAddress } from "../net/index.js";
import { ANNOTATIONS } from "./meta.js";

/**
 * Facts about a node that the controller, the agent, BGP and the Flannel mirror must derive the
 * same way: its underlay addresses, its VTEP MAC and the name of the VXLAN device.
 */

/** Name of the VXLAN device on every node. */
export const VXLAN_DEVICE = "weft.vxlan";

/** The least of a core Node the node facts need (k8s.V1Node fits). */
export interface NodeLike {
  /** Name, labels, annotations (weft.dev/underlay-ip) and whether it is being deleted. */
  metadata?: {
    name?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: unknown;
  };
  /** The addresses the kubelet reports; InternalIP is the underlay without an annotation. */
  status?: { addresses?: Array<{ type: string; address: string }> };
}

/** A node's underlay address per family (canonical text), and what was wrong with its annotation. */
export interface UnderlayAddresses {
  /** The IPv4 underlay address, if the node has one. */
  4?: string;
  /** The IPv6 underlay address, if the node has one. */
  6?: string;
  /** Entries of the weft.dev/underlay-ip annotation that were not used, and why. */
  problems: string[];
}

/**
 * Where a node is reached: per family, the weft.dev/underlay-ip annotation (one address, or one
 * per family separated by commas), else the node's first InternalIP of that family. An annotation
 * entry that is not an address, or a second one of a family, is reported and never used.
 */
export function underlayAddresses(node: NodeLike): UnderlayAddresses {
  const out: UnderlayAddresses = { problems: [] };
  const annotation = node.metadata?.annotations?.[ANNOTATIONS.underlayIP];
  const fromAnnotation = new Set<Family>();
  for (const entry of (annotation ?? "").split(",")) {
    const text = entry.trim();
    if (text === "") continue;
    const ip = tryCanonicalAddress(text);
    if (!ip) out.problems.push(`${ANNOTATIONS.underlayIP}: ${JSON.stringify(text)} is not an IP address`);
    else if (fromAnnotation.has(ip.family))
      out.problems.push(
        `${ANNOTATIONS.underlayIP}: ${ip.text} is a second ${familyLabel(ip.family)} address; using ${out[ip.family]}`,
      );
    else {
      fromAnnotation.add(ip.family);
      out[ip.family] = ip.text;
    }
  }
  for (const a of node.status?.addresses ?? []) {
    if (a.type !== "InternalIP") continue;
    const ip = tryCanonicalAddress(a.address);
    if (ip) out[ip.family] ??= ip.text;
  }
  return out;
}

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
