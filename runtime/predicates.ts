import { sameValue } from "../lib/index.js";
import type { InformerHandlers } from "./informer.js";

/**
 * Which informer events matter to a controller, controller-runtime's predicates: each function
 * says whether its kind of event passes, and a missing one passes. A periodic resync arrives as
 * update(obj, obj): the same object twice.
 */
export interface Predicate<T> {
  create?(obj: T): boolean;
  update?(oldObj: T, newObj: T): boolean;
  delete?(obj: T): boolean;
}

interface Meta {
  metadata?: {
    generation?: number;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: unknown;
  };
}

const passes = {
  create: <T>(p: Predicate<T>, obj: T) => p.create?.(obj) ?? true,
  update: <T>(p: Predicate<T>, o: T, n: T) => p.update?.(o, n) ?? true,
  delete: <T>(p: Predicate<T>, obj: T) => p.delete?.(obj) ?? true,
};

/** Updates where `select` differs between the old and the new object (sameValue); create and delete pass. */
export function changed<T>(select: (obj: T) => unknown): Predicate<T> {
  return { update: (o, n) => !sameValue(select(o), select(n)) };
}

/** The spec changed: status writes and metadata-only changes leave the generation alone. */
export const generationChanged: Predicate<Meta> = {
  update: (o, n) => o.metadata?.generation !== n.metadata?.generation,
};

export const labelsChanged: Predicate<Meta> = changed((o) => o.metadata?.labels ?? {});

export const annotationsChanged: Predicate<Meta> = changed((o) => o.metadata?.annotations ?? {});

/** Anything changed: every update except a periodic resync (an object without a version counts as changed). */
export const resourceVersionChanged: Predicate<Meta> = {
  update: (o, n) =>
    o !== n &&
    (o.metadata?.resourceVersion === undefined || o.metadata.resourceVersion !== n.metadata?.resourceVersion),
};

/** Only periodic resyncs (update with the same object twice): nothing else passes. */
export const resync: Predicate<unknown> = {
  create: () => false,
  update: (o, n) => o === n,
  delete: () => false,
};

/** Updates that mark the object for deletion (it carries a deletionTimestamp). */
export const beingDeleted: Predicate<Meta> = {
  update: (_o, n) => n.metadata?.deletionTimestamp !== undefined && n.metadata?.deletionTimestamp !== null,
};

/** Objects coming and going; no update passes. */
export const createOrDelete: Predicate<unknown> = { update: () => false };

/** Objects `test` accepts; an update passes when the old or the new object is accepted (one leaving counts). */
export function matching<T>(test: (obj: T) => boolean): Predicate<T> {
  return { create: test, update: (o, n) => test(o) || test(n), delete: test };
}

/** Every predicate passes. */
export function and<T>(...ps: Array<Predicate<T>>): Predicate<T> {
  return {
    create: (obj) => ps.every((p) => passes.create(p, obj)),
    update: (o, n) => ps.every((p) => passes.update(p, o, n)),
    delete: (obj) => ps.every((p) => passes.delete(p, obj)),
  };
}

/** Some predicate passes. */
export function or<T>(...ps: Array<Predicate<T>>): Predicate<T> {
  return {
    create: (obj) => ps.some((p) => passes.create(p, obj)),
    update: (o, n) => ps.some((p) => passes.update(p, o, n)),
    delete: (obj) => ps.some((p) => passes.delete(p, obj)),
  };
}

export function not<T>(p: Predicate<T>): Predicate<T> {
  return {
    create: (obj) => !passes.create(p, obj),
    update: (o, n) => !passes.update(p, o, n),
    delete: (obj) => !passes.delete(p, obj),
  };
}

/** Informer handlers that run only for the events the predicate passes. */
export function filtered<T>(
  predicate: Predicate<T> | undefined,
  handlers: InformerHandlers<T>,
): InformerHandlers<T> {
  if (!predicate) return handlers;
  const out: InformerHandlers<T> = {};
  const { add, update, delete: del } = handlers;
  if (add) out.add = (obj) => passes.create(predicate, obj) && add(obj);
  if (update) out.update = (o, n) => passes.update(predicate, o, n) && update(o, n);
  if (del) out.delete = (obj) => passes.delete(predicate, obj) && del(obj);
  return out;
}

/** Calls `fn` on every event the predicate passes: the trigger of a whole-state sync. */
export function onEvents<T>(predicate: Predicate<T> | undefined, fn: () => void): InformerHandlers<T> {
  return filtered(predicate, { add: fn, update: fn, delete: fn });
}
