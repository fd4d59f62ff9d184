import type { UnderlayAddresses } from "../../api/index.js";
import { FAMILIES, formatCidr, formatIP, tryParseCidr, tryParseIP } from "../../net/index.js";

/**
 * The subnets of the node's underlay addresses among the interface addresses its agent reports
 * (`192.0.2.11/24` -> `192.0.2.0/24`), one per family, in family order.
 */
export function underlaySubnets(
  u: Pick<UnderlayAddresses, 4 | 6>,
  reported: readonly string[] | undefined,
): string[] {
  const out: string[] = [];
  for (const family of FAMILIES) {
    const ip = u[family];
    if (!ip) continue;
    for (const a of reported ?? []) {
      const slash = a.indexOf("/");
      const addr = tryParseIP(a.slice(0, slash));
      const c = tryParseCidr(a, false);
      if (!addr || !c || addr.family !== family || formatIP(family, addr.value) !== ip) continue;
      out.push(formatCidr(c));
      break;
    }
  }
  return out;
}
