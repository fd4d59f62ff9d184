import { parseArgs } from "node:util";
import type { IPPool, IPReservation } from "../../api/index.js";
import { type AuditReport, audit, parsePool, reservationReport } from "../../ipam/index.js";
import type { Command } from "../command.js";
import { table } from "../table.js";
import { readSnapshot } from "./snapshot.js";

function text(r: AuditReport): string {
  const parts: string[] = [];
  const s = r.summary;
  parts.push(
    `checked ${s.pools} pool(s), ${s.blocks} block(s), ${s.addresses} address(es): ${s.problems} problem(s)`,
  );
  if (r.leaked.length) {
    parts.push(`\nLeaked addresses (${r.leaked.length}): their owner is gone`);
    parts.push(
      table(
        ["IP", "HANDLE", "POD", "NODE", "BLOCK", "SEQ", "REASON"],
        r.leaked.map((l) => [
          l.ip,
          l.handle,
          l.namespace && l.pod ? `${l.namespace}/${l.pod}` : "-",
          l.node || "-",
          l.cidr,
          l.sequence,
          l.reason,
        ]),
      ),
    );
  }
  for (const [title, list] of [
    ["Orphan blocks", r.orphanBlocks],
    ["Blocks of deleted nodes", r.deletedNodeBlocks],
    ["Invalid blocks", r.invalidBlocks],
  ] as const) {
    if (!list.length) continue;
    parts.push(`\n${title} (${list.length})`);
    parts.push(
      table(
        ["BLOCK", "POOL", "NODE", "REASON"],
        list.map((b) => [b.cidr, b.pool, b.node || "-", b.reason]),
      ),
    );
  }
  if (r.duplicates.length) {
    parts.push(`\nDuplicates (${r.duplicates.length})`);
    for (const d of r.duplicates) parts.push(`  ${d.what}`);
  }
  if (r.reservationProblems.length) {
    parts.push(`\nReservations that reserve less than they say (${r.reservationProblems.length})`);
    parts.push(
      table(
        ["RESERVATION", "FIELD", "REASON"],
        r.reservationProblems.map((p) => [p.reservation, p.field, p.reason]),
      ),
    );
  }
  if (r.reservedInUse.length) {
    // Not a problem: holders keep their addresses, and a fixed address may be a reserved one.
    parts.push(
      `\nReserved addresses in use (${r.reservedInUse.length}; not a problem, they stay with their holders)`,
    );
    parts.push(
      table(
        ["IP", "RESERVATION", "HANDLE", "POD", "NODE"],
        r.reservedInUse.map((u) => [
          u.ip,
          u.reservation,
          u.handle,
          u.namespace && u.pod ? `${u.namespace}/${u.pod}` : "-",
          u.node ?? "-",
        ]),
      ),
    );
  }
  if (r.leaked.length)
    parts.push(
      "\nRelease the leaked addresses with: weftctl ipam check -o json > r.json && weftctl ipam release --from-report r.json",
    );
  return parts.join("\n");
}

/** Whether an entry of the reservation lies inside one of the pools. */
function reservesIn(r: IPReservation, pools: readonly IPPool[]): boolean {
  const cidrs = pools.flatMap((p) => {
    try {
      return [parsePool({ name: p.metadata.name, spec: p.spec }).cidr];
    } catch {
      return [];
    }
  });
  const rep = reservationReport(r, cidrs, []);
  return (r.spec.reservedCIDRs ?? []).length > rep.outside.length + rep.invalid.length;
}

/** `weftctl ipam check`: leaks, orphan blocks, duplicates, blocks of deleted nodes; exit 1 on any. */
export const ipamCheck: Command = {
  path: ["ipam", "check"],
  summary:
    "find leaked addresses, orphan blocks, duplicates, blocks of deleted nodes and reservations outside every pool (exit 1 if any); list reserved addresses in use",
  usage: "weftctl ipam check [-o text|json] [--pool NAME]...",
  async run(ctx, args) {
    const { values } = parseArgs({
      args,
      options: {
        output: { type: "string", short: "o", default: "text" },
        pool: { type: "string", multiple: true },
      },
    });
    const snap = await readSnapshot(ctx);
    const only = values.pool?.length ? new Set(values.pool) : undefined;
    const chosen = snap.pools.filter((p) => only?.has(p.metadata.name));
    const report = audit({
      pools: snap.pools.filter((p) => !only || only.has(p.metadata.name)),
      blocks: snap.blocks.filter((b) => !only || only.has(b.spec.pool)),
      nodeExists: (n) => snap.nodes.has(n),
      podExists: (ns, p) => snap.pods.has(`${ns}/${p}`),
      podNode: (ns, p) => snap.podNodes.get(`${ns}/${p}`),
      // With --pool, only the reservations that reserve something in those pools: judged against
      // just those pools, any other reservation would look as if it lay outside every pool.
      reservations: only ? snap.reservations.filter((r) => reservesIn(r, chosen)) : snap.reservations,
    });
    ctx.out(values.output === "json" ? JSON.stringify(report, null, 2) : text(report));
    return report.summary.problems > 0 ? 1 : 0;
  },
};
