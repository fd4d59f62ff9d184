/**
 * Actions -> packed netlink requests, and the bookkeeping of what succeeded. Every request is
 * idempotent (replace; delete with "already gone" counted as done), which is what lets the bulk
 * sender resend whatever it lost.
 */

import { errorMessage } from "../../lib/index.js";
import {
  type BulkItem,
  type BulkSender,
  writeFdb,
  writeNeighbor,
  writeNexthop,
  writeRoute,
} from "../../netlink/index.js";
import {
  type Action,
  describeAction,
  forgetFdb,
  forgetNexthop,
  forgetRoute,
  neighborKey,
  nexthopKey,
  type ObservedNexthop,
  type ObservedState,
  observeFdb,
  observeNexthop,
  observeRoute,
  routeKey,
} from "./model.js";

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
  /** The actions behind `failed` (nexthop objects aside), in the same order. */
  failedActions: Action[];
  /** Error codes of nexthop objects that could not be created (EOPNOTSUPP: a kernel without them). */
  nexthopErrors: string[];
  sends: number;
  retried: number;
}

/** Device name -> index; undefined when the device does not exist. */
export type IndexOf = (device: string) => number | undefined;

/** `nhid`: a route set points at that nexthop object instead of carrying its gateway. */
export function toBulkItem(a: Action, indexOf: IndexOf, nhid?: number): BulkItem | string {
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
        nhid,
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
    return errorMessage(err);
  }
}

/** Records a successful action in the observed state, as the kernel now holds it. */
export function recordApplied(have: ObservedState, a: Action): void {
  if (a.kind === "route") {
    const key = routeKey(a.entry.dst, a.entry.metric);
    if (a.op === "set") observeRoute(have, key, a.entry);
    else forgetRoute(have, key);
  } else if (a.kind === "neighbor") {
    const key = neighborKey(a.entry.device, a.entry.ip);
    if (a.op === "set") have.neighbors.set(key, { ...a.entry, permanent: true });
    else have.neighbors.delete(key);
  } else {
    if (a.op === "set") observeFdb(have, a.entry);
    else forgetFdb(have, a.entry);
  }
}

/** How routes get nexthop objects: see writeNexthop for why. */
export interface NexthopUse {
  enabled: boolean;
  /** A free id: not held by any nexthop in the kernel and not in `taken`. */
  allocate(taken: ReadonlySet<number>): number;
}

/** Routes that can point at a nexthop object: a gateway on a given device (the kernel needs both). */
const wantsNexthop = (a: Action): a is Action & { kind: "route" } =>
  a.kind === "route" &&
  a.op === "set" &&
  a.entry.type === "unicast" &&
  a.entry.gateway !== undefined &&
  a.entry.device !== undefined;

type Sent = { action: Action; nhid?: number } | { nexthop: ObservedNexthop };

export async function applyActions(
  bulk: BulkSender,
  actions: readonly Action[],
  indexOf: IndexOf,
  have: ObservedState,
  nexthops?: NexthopUse,
): Promise<ApplyOutcome> {
  const items: BulkItem[] = [];
  const sent: Sent[] = [];
  const out: ApplyOutcome = { ok: 0, failed: [], failedActions: [], nexthopErrors: [], sends: 0, retried: 0 };
  // nexthops created by this apply, by nexthopKey; each goes out just before the first route using it
  const created = new Map<string, number>();
  const taken = new Set<number>();
  for (const a of actions) {
    let nhid: number | undefined;
    if (nexthops?.enabled && wantsNexthop(a)) {
      const r = a.entry;
      const key = nexthopKey(r.device!, r.gateway!, r.onlink);
      nhid = have.nexthopByKey.get(key) ?? created.get(key);
      const oif = indexOf(r.device!);
      if (nhid === undefined && oif !== undefined) {
        const id = nexthops.allocate(taken);
        taken.add(id);
        created.set(key, id);
        const spec = { id, oif, gateway: r.gateway!, onlink: r.onlink };
        items.push({ encode: (w, seq, ack) => writeNexthop(w, "set", spec, seq, ack) });
        sent.push({
          nexthop: { id, owned: true, gateway: r.gateway!, device: r.device!, onlink: Boolean(r.onlink) },
        });
        nhid = id;
      }
    }
    const item = toBulkItem(a, indexOf, nhid);
    if (item === "gone") {
      recordApplied(have, a);
      out.ok++;
    } else if (typeof item === "string") {
      out.failed.push({ action: describeAction(a), code: item });
      out.failedActions.push(a);
    } else {
      items.push(item);
      sent.push(nhid === undefined ? { action: a } : { action: a, nhid });
    }
  }
  if (!items.length) return out;
  const res = await bulk.send(items);
  out.sends = res.sends;
  out.retried = res.retried;
  const failed = new Map(res.failed.map((f) => [f.index, f.code]));
  for (let i = 0; i < sent.length; i++) {
    const code = failed.get(i);
    const s = sent[i]!;
    if ("nexthop" in s) {
      const nh = s.nexthop;
      if (code === undefined) observeNexthop(have, nh);
      else {
        out.failed.push({ action: `set nexthop id ${nh.id} via ${nh.gateway} dev ${nh.device}`, code });
        out.nexthopErrors.push(code);
      }
      continue;
    }
    const a = s.action;
    if (code === undefined) {
      recordApplied(
        have,
        s.nhid === undefined || a.kind !== "route" ? a : { ...a, entry: { ...a.entry, nhid: s.nhid } },
      );
      out.ok++;
    } else {
      out.failed.push({ action: describeAction(a), code });
      out.failedActions.push(a);
    }
  }
  return out;
}

/**
 * Deletes our nexthop objects that no route of ours points at any more (after routes moved to
 * another gateway or went away). Their failures are left for the next round.
 */
export async function collectNexthops(bulk: BulkSender, have: ObservedState): Promise<number> {
  const ids = [...have.unusedNexthops];
  if (!ids.length) return 0;
  const res = await bulk.send(
    ids.map((id) => ({
      encode: (w, seq, ack) => writeNexthop(w, "del", { id, oif: 0, gateway: "0.0.0.0" }, seq, ack),
      tolerate: GONE,
    })),
  );
  const failed = new Set(res.failed.map((f) => f.index));
  ids.forEach((id, i) => {
    if (!failed.has(i)) forgetNexthop(have, id);
  });
  return ids.length - failed.size;
}
