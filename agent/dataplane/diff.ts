/**
 * desired + observed -> the actions that converge the kernel. Pure.
 *
 * Order (make before break): neighbors, then FDB entries, then routes are set with replace
 * semantics, so a route never points at a next hop the kernel cannot resolve yet; then stale
 * routes, FDB entries and neighbors are removed, in that order. Only owned entries are ever removed,
 * and a route slot held by a foreign route is reported as a conflict, never overwritten.
 */
import { type DesiredIndex, keptFdb, keptNeighbor } from "./desired.js";
import {
  type Action,
  type FdbEntry,
  fdbMacKey,
  type ObservedState,
  type RouteEntry,
  sameDesiredRoute,
  sameFdb,
  sameNeighbor,
  sameRoute,
} from "./model.js";

export interface Plan {
  actions: Action[];
  /** Desired routes whose slot is held by a route we do not own. */
  conflicts: string[];
  /** Their route keys, in the same order. */
  conflictKeys: string[];
}

export const routeConflictNote = (key: string) =>
  `route ${key}: held by a route Weft does not own; left alone`;

/**
 * A route of someone else's in a slot we want, identical to ours but for its protocol (what
 * flanneld leaves on a node that switches to weft-agent): replacing it changes nothing for traffic
 * and makes it ours, so it goes when the node it leads to goes. Anything else stays a conflict.
 */
export function takesOver(want: RouteEntry, have: ObservedState, key: string): boolean {
  const o = have.foreignEntries.get(key);
  return (
    o !== undefined && o.type === want.type && (o.metric ?? 0) === (want.metric ?? 0) && sameRoute(want, o)
  );
}

export function diff(want: DesiredIndex, have: ObservedState): Plan {
  const setNeigh: Action[] = [];
  const setFdb: Action[] = [];
  const setRoute: Action[] = [];
  const delRoute: Action[] = [];
  const delFdb: Action[] = [];
  const delNeigh: Action[] = [];
  const conflicts: string[] = [];
  const conflictKeys: string[] = [];

  for (const [key, n] of want.neighbors) {
    const o = have.neighbors.get(key);
    if (!o?.permanent || o.mac !== n.mac) setNeigh.push({ kind: "neighbor", op: "set", entry: n });
  }
  for (const [key, o] of have.neighbors) {
    // non-permanent entries are the kernel's own ARP cache: not ours to delete
    if (o.permanent && !want.neighbors.has(key) && !keptNeighbor(want, key, o.mac)) {
      delNeigh.push({ kind: "neighbor", op: "del", entry: { ip: o.ip, mac: o.mac, device: o.device } });
    }
  }

  const haveRemotes = new Set<string>();
  for (const o of have.fdb.values()) {
    const w = want.fdb.get(fdbMacKey(o.device, o.mac));
    if (w && w.dst === o.dst) haveRemotes.add(fdbMacKey(o.device, o.mac));
    else if (!w && keptFdb(want, o)) continue;
    else delFdb.push({ kind: "fdb", op: "del", entry: o });
  }
  for (const [key, f] of want.fdb) {
    if (!haveRemotes.has(key)) setFdb.push({ kind: "fdb", op: "set", entry: f });
  }

  for (const [key, r] of want.routes) {
    const o = have.routes.get(key);
    if (o) {
      if (!sameRoute(r, o)) setRoute.push({ kind: "route", op: "set", entry: r });
    } else if (have.foreignRoutes.has(key) && !takesOver(r, have, key)) {
      conflicts.push(routeConflictNote(key));
      conflictKeys.push(key);
    } else {
      setRoute.push({ kind: "route", op: "set", entry: r });
    }
  }
  for (const [key, o] of have.routes) {
    if (!want.routes.has(key)) delRoute.push({ kind: "route", op: "del", entry: o });
  }

  return {
    actions: [...setNeigh, ...setFdb, ...setRoute, ...delRoute, ...delFdb, ...delNeigh],
    conflicts,
    conflictKeys,
  };
}

/** Whether the kernel already matches for one key: the event path's cheap drift check. */
export function routeInSync(want: DesiredIndex, have: ObservedState, key: string): boolean {
  const w = want.routes.get(key);
  const o = have.routes.get(key);
  if (!w) return !o;
  // a conflict is not drift we can repair; an identical foreign route is one to take over
  if (!o) return have.foreignRoutes.has(key) && !takesOver(w, have, key);
  return sameRoute(w, o);
}

export function neighborInSync(want: DesiredIndex, have: ObservedState, key: string): boolean {
  const w = want.neighbors.get(key);
  const o = have.neighbors.get(key);
  if (!w) return !o?.permanent || keptNeighbor(want, key, o.mac);
  return o?.permanent === true && o.mac === w.mac;
}

/** After an event added (present) or removed one remote of a MAC: is that remote as desired? */
export function fdbRemoteInSync(want: DesiredIndex, f: FdbEntry, present: boolean): boolean {
  const w = want.fdb.get(fdbMacKey(f.device, f.mac));
  const wanted = w !== undefined && w.dst === f.dst;
  if (present && !w && keptFdb(want, f)) return true;
  return wanted === present;
}

/** Keys to look at: route keys, neighbor keys, FDB MAC keys (fdbMacKey). */
export interface DiffKeys {
  routes: Iterable<string>;
  neighbors: Iterable<string>;
  fdb: Iterable<string>;
}

export interface KeyPlan extends Plan {
  /** Route keys looked at that are not in conflict (any conflict they had is over). */
  clear: string[];
}

/**
 * diff() restricted to the given keys: the same actions full diff would produce for them, in the
 * same phase order. When every other key is in sync (the dataplane marks a key the moment a
 * desired change or a kernel event puts it out of sync), this is the whole of diff()'s plan.
 */
export function diffKeys(want: DesiredIndex, have: ObservedState, keys: DiffKeys): KeyPlan {
  const setNeigh: Action[] = [];
  const setFdb: Action[] = [];
  const setRoute: Action[] = [];
  const delRoute: Action[] = [];
  const delFdb: Action[] = [];
  const delNeigh: Action[] = [];
  const conflicts: string[] = [];
  const conflictKeys: string[] = [];
  const clear: string[] = [];

  for (const key of keys.neighbors) {
    const n = want.neighbors.get(key);
    const o = have.neighbors.get(key);
    if (n) {
      if (!o?.permanent || o.mac !== n.mac) setNeigh.push({ kind: "neighbor", op: "set", entry: n });
    } else if (o?.permanent && !keptNeighbor(want, key, o.mac)) {
      delNeigh.push({ kind: "neighbor", op: "del", entry: { ip: o.ip, mac: o.mac, device: o.device } });
    }
  }

  for (const key of keys.fdb) {
    const w = want.fdb.get(key);
    let kept = false;
    for (const o of have.fdbByMac.get(key)?.values() ?? []) {
      if (w && w.dst === o.dst) kept = true;
      else if (!w && keptFdb(want, o)) continue;
      else delFdb.push({ kind: "fdb", op: "del", entry: o });
    }
    if (w && !kept) setFdb.push({ kind: "fdb", op: "set", entry: w });
  }

  for (const key of keys.routes) {
    const r = want.routes.get(key);
    const o = have.routes.get(key);
    if (r) {
      if (o) {
        if (!sameRoute(r, o)) setRoute.push({ kind: "route", op: "set", entry: r });
        clear.push(key);
      } else if (have.foreignRoutes.has(key) && !takesOver(r, have, key)) {
        conflicts.push(routeConflictNote(key));
        conflictKeys.push(key);
      } else {
        setRoute.push({ kind: "route", op: "set", entry: r });
        clear.push(key);
      }
    } else {
      if (o) delRoute.push({ kind: "route", op: "del", entry: o });
      clear.push(key);
    }
  }

  return {
    actions: [...setNeigh, ...setFdb, ...setRoute, ...delRoute, ...delFdb, ...delNeigh],
    conflicts,
    conflictKeys,
    clear,
  };
}

function markMap<T>(
  from: Map<string, T>,
  to: Map<string, T>,
  same: (a: T, b: T) => boolean,
  out: Set<string>,
) {
  if (from === to) return;
  for (const [k, e] of to) {
    const o = from.get(k);
    if (o === undefined || (o !== e && !same(o, e))) out.add(k);
  }
  for (const k of from.keys()) if (!to.has(k)) out.add(k);
}

/**
 * Adds to `out` every key whose desired entry differs between two desired states: what a whole
 * new desired state costs to take in (a map lookup per entry) before only those keys are diffed.
 */
export function markDifference(from: DesiredIndex, to: DesiredIndex, out: DiffKeySets): void {
  markMap(from.routes, to.routes, sameDesiredRoute, out.routes);
  markMap(from.neighbors, to.neighbors, sameNeighbor, out.neighbors);
  markMap(from.fdb, to.fdb, sameFdb, out.fdb);
}

export interface DiffKeySets {
  routes: Set<string>;
  neighbors: Set<string>;
  fdb: Set<string>;
}
