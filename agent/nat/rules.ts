/**
 * Outgoing NAT as a pure function of the pools: which pod sources are masqueraded, and the one
 * nftables table that does it. No I/O; nat-table.ts applies the script.
 */
import type { IPPool } from "../../api/index.js";
import { formatCidr, tryParseCidr } from "../../net/index.js";

/** The only table the agent creates, changes or deletes. Family inet: one table for IPv4 and IPv6. */
export const NAT_TABLE = { family: "inet", name: "weft" } as const;
export const NAT_TABLE_TEXT = `${NAT_TABLE.family} ${NAT_TABLE.name}`;

export interface NatPlan {
  /** Pools whose pods' outgoing traffic is masqueraded (sorted names). */
  pools: string[];
  /** Their CIDRs: the sources to masquerade, per family. */
  sources: { v4: string[]; v6: string[] };
  /** Every pool's CIDR: destinations inside any pool are pod traffic, never masqueraded. */
  inside: { v4: string[]; v6: string[] };
}

/**
 * What this node masquerades: traffic from the pools it holds blocks of whose natOutgoing is on
 * (the default) to destinations outside every pool. Only pools of its own blocks count, so a node
 * never rewrites a source it cannot have. Undefined when nothing is to be masqueraded: the table
 * goes away then.
 */
export function natPlan(pools: readonly IPPool[], ownPools: ReadonlySet<string>): NatPlan | undefined {
  const inside = { v4: [] as string[], v6: [] as string[] };
  const sources = { v4: [] as string[], v6: [] as string[] };
  const names: string[] = [];
  for (const p of [...pools].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))) {
    const parsed = tryParseCidr(p.spec.cidr, false);
    if (!parsed) continue; // the apiserver refuses these; nothing of it reaches a rule
    const cidr = formatCidr(parsed);
    const fam = parsed.family === 6 ? "v6" : "v4";
    if (!inside[fam].includes(cidr)) inside[fam].push(cidr);
    if (p.spec.natOutgoing === false || !ownPools.has(p.metadata.name)) continue;
    names.push(p.metadata.name);
    if (!sources[fam].includes(cidr)) sources[fam].push(cidr);
  }
  if (names.length === 0) return undefined;
  return { pools: names, sources, inside };
}

const set = (name: string, type: string, elements: string[]) =>
  `  set ${name} {\n    type ${type}\n    flags interval\n    auto-merge\n    elements = { ${elements.join(", ")} }\n  }`;

/**
 * The nft script that makes the table exactly `plan` in one transaction: the table is created if
 * absent, deleted and built again, all in one batch the kernel commits at once, so there is no
 * moment without the rules (nor with half of them). Without a plan the table is only deleted.
 * Every name in the script is Weft's own: no other table is ever named.
 */
export function natScript(plan: NatPlan | undefined): string {
  const lines = [`table ${NAT_TABLE_TEXT}`, `delete table ${NAT_TABLE_TEXT}`];
  if (!plan) return `${lines.join("\n")}\n`;
  const body: string[] = ['  comment "weft-agent: outgoing NAT of pods; edits are undone"'];
  const rules: string[] = [];
  if (plan.sources.v4.length) {
    body.push(
      set("pod_sources_v4", "ipv4_addr", plan.sources.v4),
      set("pools_v4", "ipv4_addr", plan.inside.v4),
    );
    rules.push("    ip saddr @pod_sources_v4 ip daddr != @pools_v4 masquerade");
  }
  if (plan.sources.v6.length) {
    body.push(
      set("pod_sources_v6", "ipv6_addr", plan.sources.v6),
      set("pools_v6", "ipv6_addr", plan.inside.v6),
    );
    rules.push("    ip6 saddr @pod_sources_v6 ip6 daddr != @pools_v6 masquerade");
  }
  body.push(
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    ...rules,
    "  }",
  );
  lines.push(`table ${NAT_TABLE_TEXT} {`, ...body, "}");
  return `${lines.join("\n")}\n`;
}
