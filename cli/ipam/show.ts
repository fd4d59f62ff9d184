import { parseArgs } from "node:util";
import { withPoolDefaults } from "../../api/index.js";
import {
  blockAddressCount,
  isIpamError,
  parsePool,
  poolUsage,
  reservationReport,
  reservedOrdinals,
  reservedSet,
} from "../../ipam/index.js";
import type { Command } from "../command.js";
import { percent, table } from "../table.js";
import { readSnapshot } from "./snapshot.js";

/**
 * `weftctl ipam show`: pools with their usage and reserved addresses, blocks and addresses per
 * node, the IPReservations; with --blocks every block with its reserved addresses and borrowers.
 */
export const ipamShow: Command = {
  path: ["ipam", "show"],
  summary: "pools, blocks per node and utilisation",
  usage: "weftctl ipam show [-o text|json] [--blocks]",
  async run(ctx, args) {
    const { values } = parseArgs({
      args,
      options: { output: { type: "string", short: "o", default: "text" }, blocks: { type: "boolean" } },
    });
    const snap = await readSnapshot(ctx, { pods: false });
    const reserved = reservedSet(snap.reservations);
    const reservedIn = (cidr: string) => {
      try {
        const c = parsePool({ name: "x", spec: { cidr } }).cidr;
        return snap.reservations
          .reduce((n, r) => n + reservationReport(r, [c], []).reservedAddresses, 0n)
          .toString();
      } catch {
        return "0";
      }
    };
    const pools = snap.pools
      .map((p) => {
        const conds = Object.fromEntries((p.status?.conditions ?? []).map((c) => [c.type, c.status]));
        const { spec } = withPoolDefaults(p);
        let usage: ReturnType<typeof poolUsage> | undefined;
        try {
          usage = poolUsage(
            parsePool({ name: p.metadata.name, spec: p.spec }),
            snap.blocks.map((b) => b.spec),
          );
        } catch (e) {
          if (!isIpamError(e)) throw e;
        }
        return {
          name: p.metadata.name,
          cidr: p.spec.cidr,
          allocation: spec.allocation,
          encapsulation: spec.encapsulation,
          disabled: spec.disabled,
          deleting: Boolean(p.metadata.deletionTimestamp),
          blocksUsed: usage?.blocksUsed ?? 0,
          blocksTotal: usage?.blocksTotal.toString() ?? "?",
          addressesUsed: usage?.addressesUsed ?? 0,
          addressesTotal: usage?.addressesTotal.toString() ?? "?",
          reserved: reservedIn(p.spec.cidr),
          ready: conds.Ready ?? "Unknown",
          overlapping: conds.Overlapping === "True",
          exhausted: conds.Exhausted === "True",
        };
      })
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    const nodes = new Map<string, { blocks: number; used: number; capacity: number; pools: Set<string> }>();
    for (const b of snap.blocks) {
      const key = b.spec.affinity || "(none)";
      const n = nodes.get(key) ?? { blocks: 0, used: 0, capacity: 0, pools: new Set<string>() };
      n.blocks++;
      n.used += b.spec.allocations.length;
      n.capacity += blockAddressCount(b.spec);
      n.pools.add(b.spec.pool);
      nodes.set(key, n);
    }
    const perNode = [...nodes]
      .map(([node, n]) => ({
        node,
        exists: node === "(none)" || snap.nodes.has(node),
        blocks: n.blocks,
        addressesUsed: n.used,
        capacity: n.capacity,
        pools: [...n.pools].sort(),
      }))
      .sort((a, b) => (a.node < b.node ? -1 : 1));
    const blocks = snap.blocks
      .map((b) => ({
        block: b.metadata.name,
        cidr: b.spec.cidr,
        pool: b.spec.pool,
        node: b.spec.affinity,
        used: b.spec.allocations.length,
        capacity: blockAddressCount(b.spec),
        reserved: reservedOrdinals(reserved, b.spec).size,
        borrowedBy: [...new Set(b.spec.allocations.flatMap((a) => (a.node ? [a.node] : [])))].sort(),
      }))
      .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.cidr < b.cidr ? -1 : 1));
    const poolCidrs = snap.pools.flatMap((p) => {
      try {
        return [parsePool({ name: p.metadata.name, spec: p.spec }).cidr];
      } catch {
        return [];
      }
    });
    const reservations = snap.reservations
      .map((r) => {
        const rep = reservationReport(
          r,
          poolCidrs,
          snap.blocks.map((b) => b.spec),
        );
        return {
          name: r.metadata.name,
          entries: r.spec.reservedCIDRs ?? [],
          reserved: rep.reservedAddresses.toString(),
          inUse: rep.inUse.length,
          outsidePools: rep.outside.map((o) => o.entry),
        };
      })
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    if (values.output === "json") {
      ctx.out(
        JSON.stringify(
          { pools, nodes: perNode, reservations, ...(values.blocks ? { blocks } : {}) },
          null,
          2,
        ),
      );
      return 0;
    }
    const state = (p: (typeof pools)[number]) =>
      p.deleting
        ? "Draining"
        : p.disabled
          ? "Disabled"
          : p.overlapping && p.ready !== "True"
            ? "Overlapping"
            : p.exhausted
              ? "Exhausted"
              : p.ready === "True"
                ? "Ready"
                : p.ready;
    ctx.out(
      table(
        ["POOL", "CIDR", "ALLOCATION", "ENCAP", "BLOCKS", "ADDRESSES", "USED", "RESERVED", "STATE"],
        pools.map((p) => [
          p.name,
          p.cidr,
          p.allocation,
          p.encapsulation,
          `${p.blocksUsed}/${p.blocksTotal}`,
          `${p.addressesUsed}/${p.addressesTotal}`,
          percent(p.addressesUsed, BigInt(p.addressesTotal === "?" ? 0 : p.addressesTotal)),
          p.reserved,
          state(p),
        ]),
      ),
    );
    ctx.out("");
    ctx.out(
      table(
        ["NODE", "BLOCKS", "ADDRESSES", "USED", "POOLS"],
        perNode.map((n) => [
          n.exists ? n.node : `${n.node} (deleted)`,
          n.blocks,
          `${n.addressesUsed}/${n.capacity}`,
          percent(n.addressesUsed, n.capacity),
          n.pools.join(","),
        ]),
      ),
    );
    if (reservations.length) {
      ctx.out("");
      ctx.out(
        table(
          ["RESERVATION", "ENTRIES", "RESERVED", "IN USE", "OUTSIDE POOLS"],
          reservations.map((r) => [
            r.name,
            r.entries.join(","),
            r.reserved,
            r.inUse,
            r.outsidePools.join(",") || "-",
          ]),
        ),
      );
    }
    if (values.blocks) {
      ctx.out("");
      ctx.out(
        table(
          ["BLOCK", "POOL", "NODE", "ADDRESSES", "USED", "RESERVED", "BORROWED BY"],
          blocks.map((b) => [
            b.cidr,
            b.pool,
            b.node || "(none)",
            `${b.used}/${b.capacity}`,
            percent(b.used, b.capacity),
            b.reserved,
            b.borrowedBy.join(",") || "-",
          ]),
        ),
      );
    }
    return 0;
  },
};
