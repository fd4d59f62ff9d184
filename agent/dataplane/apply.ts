/**
 * Actions -> packed netlink requests, and the bookkeeping of what succeeded. Every request is
 * idempotent (replace; delete with "already gone" counted as done), which is what lets the bulk
 * sender resend whatever it lost.
 */
import type { BulkItem, BulkSender } from "../netlink/bulk.js";
import { writeFdb, writeNeighbor, writeRoute } from "../netlink/encode.js";
import { type Action, describeAction, fdbKey, neighborKey, type ObservedState, routeKey } from "./model.js";

const ENOENT = 2;
const ESRCH = 3;
const GONE = [ENOENT, ESRCH] as const;

export interface ActionFailure {
  action: string;
  code: string;
}

export interface ApplyOutcome {
  ok: number;
  failed: ActionFailure[];
  sends: number;
  retried: number;
}

/** Device name -> index; undefined when the device does not exist. */
export type IndexOf = (device: string) => number | undefined;

export function toBulkItem(a: Action, indexOf: IndexOf): BulkItem | string {
  const dev = (name: string) => {
    const i = indexOf(name);
    if (i === undefined) throw new Error(`device ${name} not found`);
    return i;
  };
  try {
    if (a.kind === "route") {
      const r = a.entry;
      if (a.op === "del") {
        // match on prefix, metric and our protocol only: never a foreign route in the same slot
        const spec = { dst: r.dst, priority: r.metric };
        return { encode: (w, seq, ack) => writeRoute(w, "del", spec, seq, ack), tolerate: GONE };
      }
      const spec = {
        dst: r.dst,
        type: r.type === "blackhole" ? ("blackhole" as const) : ("unicast" as const),
        gateway: r.gateway,
        oif: r.device !== undefined ? dev(r.device) : undefined,
        onlink: r.onlink,
        priority: r.metric,
      };
      return { encode: (w, seq, ack) => writeRoute(w, "set", spec, seq, ack) };
    }
    if (a.kind === "neighbor") {
      const n = a.entry;
      const spec = { ifindex: dev(n.device), ip: n.ip, mac: n.mac };
      if (a.op === "del") {
        return {
          encode: (w, seq, ack) => writeNeighbor(w, "del", { ...spec, mac: undefined }, seq, ack),
          tolerate: GONE,
        };
      }
      return { encode: (w, seq, ack) => writeNeighbor(w, "set", spec, seq, ack) };
    }
    const f = a.entry;
    const spec = { ifindex: dev(f.device), mac: f.mac, dst: f.dst };
    return a.op === "del"
      ? { encode: (w, seq, ack) => writeFdb(w, "del", spec, seq, ack), tolerate: GONE }
      : { encode: (w, seq, ack) => writeFdb(w, "set", spec, seq, ack) };
  } catch (err) {
    // a delete on a device that is gone has nothing left to delete
    if (a.op === "del" && err instanceof Error && /not found/.test(err.message)) return "gone";
    return err instanceof Error ? err.message : String(err);
  }
}

/** Records a successful action in the observed state, as the kernel now holds it. */
export function recordApplied(have: ObservedState, a: Action): void {
  if (a.kind === "route") {
    const key = routeKey(a.entry.dst, a.entry.metric);
    if (a.op === "set") have.routes.set(key, a.entry);
    else have.routes.delete(key);
  } else if (a.kind === "neighbor") {
    const key = neighborKey(a.entry.device, a.entry.ip);
    if (a.op === "set") have.neighbors.set(key, { ...a.entry, permanent: true });
    else have.neighbors.delete(key);
  } else {
    const key = fdbKey(a.entry.device, a.entry.mac, a.entry.dst);
    if (a.op === "set") have.fdb.set(key, a.entry);
    else have.fdb.delete(key);
  }
}

export async function applyActions(
  bulk: BulkSender,
  actions: readonly Action[],
  indexOf: IndexOf,
  have: ObservedState,
): Promise<ApplyOutcome> {
  const items: BulkItem[] = [];
  const sent: Action[] = [];
  const out: ApplyOutcome = { ok: 0, failed: [], sends: 0, retried: 0 };
  for (const a of actions) {
    const item = toBulkItem(a, indexOf);
    if (item === "gone") {
      recordApplied(have, a);
      out.ok++;
    } else if (typeof item === "string") {
      out.failed.push({ action: describeAction(a), code: item });
    } else {
      items.push(item);
      sent.push(a);
    }
  }
  if (!items.length) return out;
  const res = await bulk.send(items);
  out.sends = res.sends;
  out.retried = res.retried;
  const failed = new Map(res.failed.map((f) => [f.index, f.code]));
  for (let i = 0; i < sent.length; i++) {
    const code = failed.get(i);
    if (code === undefined) {
      recordApplied(have, sent[i]!);
      out.ok++;
    } else {
      out.failed.push({ action: describeAction(sent[i]!), code });
    }
  }
  return out;
}
