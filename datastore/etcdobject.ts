import { isDeepStrictEqual } from "node:util";
import { API_VERSION, type ObjectMeta } from "../api/index.js";

/**
 * The apiserver's write semantics for custom resources with a status subresource, as pure
 * functions over plain objects, so that the etcd backend behaves like the kubernetes one:
 * create sets uid, creationTimestamp and generation 1 and drops status; update keeps the stored
 * status and immutable metadata and bumps generation when anything but metadata and status
 * changed; updateStatus changes the status only; delete of an object with finalizers marks it
 * (deletionTimestamp) and the last finalizer removed deletes it.
 */
export interface StoredObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  status?: unknown;
  [field: string]: unknown;
}

/** Why a write was refused; the Store turns it into InvalidError. */
export class ObjectRuleError extends Error {}

/** RFC 3339 at second precision, as the apiserver writes timestamps. */
export function apiTimestamp(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Fields other than metadata and status (spec and anything else the kind carries). */
function specPart(obj: StoredObject): Record<string, unknown> {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, resourceVersion: _r, ...rest } = obj;
  return rest;
}

/** Bytes to store: the object without resourceVersion (the key's mod revision is the version). */
export function encodeObject(obj: StoredObject): string {
  const { resourceVersion: _rv, ...metadata } = obj.metadata;
  return JSON.stringify({ ...obj, metadata });
}

export function decodeObject<T>(value: Buffer | string, resourceVersion: string): T {
  const obj = JSON.parse(value.toString()) as StoredObject;
  obj.metadata = { ...obj.metadata, resourceVersion };
  return obj as T;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The object as create stores it. */
export function prepareCreate<T extends StoredObject>(obj: T, kind: string, uid: string, now: Date): T {
  const name = obj.metadata?.name;
  if (!name || name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    throw new ObjectRuleError(
      `metadata.name: Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 subdomain is required`,
    );
  }
  const {
    resourceVersion: _rv,
    uid: _uid,
    deletionTimestamp: _dt,
    generation: _g,
    creationTimestamp: _ct,
    ...meta
  } = obj.metadata;
  const { status: _status, ...rest } = obj;
  return {
    ...rest,
    apiVersion: API_VERSION,
    kind,
    metadata: { ...meta, uid, creationTimestamp: apiTimestamp(now), generation: 1 },
  } as T;
}

export interface UpdateResult<T> {
  /** What to store; undefined when the write would change nothing (no new revision). */
  next?: T;
  /** The last finalizer of an object marked for deletion was removed: delete the key. */
  remove?: boolean;
}

/** A main-resource update: spec and mutable metadata from `incoming`, the rest from `stored`. */
export function prepareUpdate<T extends StoredObject>(stored: T, incoming: T): UpdateResult<T> {
  const sm = stored.metadata;
  const im = incoming.metadata;
  if (sm.deletionTimestamp) {
    const had = new Set(sm.finalizers ?? []);
    const added = (im.finalizers ?? []).filter((f) => !had.has(f));
    if (added.length > 0) {
      throw new ObjectRuleError(
        `metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`,
      );
    }
  }
  const specChanged = !isDeepStrictEqual(specPart(stored), specPart(incoming));
  const metadata: ObjectMeta = { ...im, name: sm.name };
  for (const f of ["uid", "creationTimestamp", "deletionTimestamp"] as const) {
    if (sm[f] === undefined) delete metadata[f];
    else metadata[f] = sm[f];
  }
  metadata.generation = (sm.generation ?? 1) + (specChanged ? 1 : 0);
  delete metadata.resourceVersion;
  const next = { ...specPart(incoming), apiVersion: stored.apiVersion, kind: stored.kind, metadata } as T;
  if (stored.status !== undefined) next.status = stored.status;
  if (sm.deletionTimestamp && (metadata.finalizers ?? []).length === 0) return { next, remove: true };
  return unchanged(stored, next) ? {} : { next };
}

/** A status update: only .status comes from `incoming`. */
export function prepareUpdateStatus<T extends StoredObject>(stored: T, incoming: T): UpdateResult<T> {
  const next = { ...stored, metadata: { ...stored.metadata } } as T;
  delete next.metadata.resourceVersion;
  if (incoming.status === undefined) delete next.status;
  else next.status = incoming.status;
  return unchanged(stored, next) ? {} : { next };
}

/** Delete of an object with finalizers: marked, kept until they are gone. Undefined: delete now. */
export function prepareDelete<T extends StoredObject>(stored: T, now: Date): UpdateResult<T> | undefined {
  if ((stored.metadata.finalizers ?? []).length === 0) return undefined;
  if (stored.metadata.deletionTimestamp) return {};
  const metadata = { ...stored.metadata, deletionTimestamp: apiTimestamp(now) };
  metadata.generation = (metadata.generation ?? 1) + 1;
  delete metadata.resourceVersion;
  return { next: { ...stored, metadata } };
}

function unchanged(stored: StoredObject, next: StoredObject): boolean {
  const { resourceVersion: _rv, ...meta } = stored.metadata;
  return isDeepStrictEqual({ ...stored, metadata: meta }, next);
}
