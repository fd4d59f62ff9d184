import { MUTATE_DEFAULTS, mutateWith } from "./mutate.js";
import {
  AlreadyExistsError,
  type ApplyOptions,
  ConflictError,
  type Kind,
  NotFoundError,
  type ObjectOf,
  type StatusOf,
  type Store,
  TooManyConflictsError,
} from "./store.js";

/*
 * Server-side apply for a backend that has none (etcd). There are no managedFields to remember
 * what a writer set before, so each call names the part it owns outright: labels, annotations,
 * owner references and spec for apply, the status for applyStatus, one finalizer for
 * applyFinalizer. Each is a compare-and-swap read-modify-write, so concurrent writers of other
 * parts are never overwritten.
 */

type Backend = Pick<Store, "get" | "create" | "update" | "updateStatus">;

const OWNED_METADATA = ["labels", "annotations", "ownerReferences"] as const;

export async function applyEmulated<K extends Kind>(
  store: Backend,
  kind: K,
  obj: ObjectOf<K>,
): Promise<ObjectOf<K>> {
  const name = obj.metadata.name;
  for (let attempt = 0; attempt <= MUTATE_DEFAULTS.retries; attempt++) {
    if (!(await store.get(kind, name))) {
      const { resourceVersion: _rv, uid: _uid, ...metadata } = obj.metadata;
      try {
        return await store.create(kind, { ...obj, metadata, status: undefined } as ObjectOf<K>);
      } catch (err) {
        if (err instanceof AlreadyExistsError) continue;
        throw err;
      }
    }
    try {
      return await mutateWith(store, kind, name, (cur) => {
        const metadata = { ...cur.metadata };
        for (const field of OWNED_METADATA) {
          const value = obj.metadata[field];
          if (value === undefined) delete metadata[field];
          else (metadata as Record<string, unknown>)[field] = value;
        }
        return { ...cur, metadata, spec: obj.spec };
      });
    } catch (err) {
      // Deleted between the read and the write: create it on the next round.
      if (err instanceof NotFoundError) continue;
      throw err;
    }
  }
  throw new TooManyConflictsError(kind, name, MUTATE_DEFAULTS.retries + 1);
}

function checkUid(kind: Kind, name: string, uid: string | undefined, opts: ApplyOptions): void {
  if (opts.uid && uid !== opts.uid)
    throw new ConflictError(kind, name, `uid mismatch: expected ${opts.uid}, the object is ${uid}`);
}

export function applyStatusEmulated<K extends Kind>(
  store: Backend,
  kind: K,
  name: string,
  status: StatusOf<K>,
): Promise<ObjectOf<K>> {
  return mutateWith(store, kind, name, (cur) => ({ ...cur, status }), { status: true });
}

export function applyFinalizerEmulated<K extends Kind>(
  store: Backend,
  kind: K,
  name: string,
  finalizer: string,
  present: boolean,
  opts: ApplyOptions = {},
): Promise<ObjectOf<K>> {
  return mutateWith(store, kind, name, (cur) => {
    checkUid(kind, name, cur.metadata.uid, opts);
    const others = (cur.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    const finalizers = present ? [...others, finalizer] : others;
    const { finalizers: _old, ...rest } = cur.metadata;
    const metadata = finalizers.length > 0 ? { ...rest, finalizers } : rest;
    const has = cur.metadata.finalizers?.includes(finalizer) ?? false;
    return has === present ? cur : { ...cur, metadata };
  });
}
