import type {
  BGPConfiguration,
  BGPPeer,
  IPAMBlock,
  IPPool,
  IPReservation,
  Kind,
  NodeNetworkStatus,
  RouteIntent,
} from "../api/index.js";

/**
 * One interface over wherever weft.dev objects live (CRDs through the apiserver, or etcd).
 * resourceVersion is opaque: the kubernetes backend hands out the apiserver's, the etcd backend
 * a mod revision. Callers only pass it back, never compare or parse it.
 */
export interface KindMap {
  IPPool: IPPool;
  IPAMBlock: IPAMBlock;
  RouteIntent: RouteIntent;
  NodeNetworkStatus: NodeNetworkStatus;
  BGPConfiguration: BGPConfiguration;
  BGPPeer: BGPPeer;
  IPReservation: IPReservation;
}

export type { Kind };
export type ObjectOf<K extends Kind> = KindMap[K];

export interface ListResult<T> {
  items: T[];
  /** Where a watch continues from to see every change after this list. */
  resourceVersion: string;
}

/**
 * Events a watch delivers. EXPIRED and CLOSED are terminal: nothing follows them.
 * EXPIRED: the backend no longer has the history since the requested version; list again.
 * CLOSED: the stream ended (server timeout, network); watch again from the last version seen.
 */
export type WatchEvent<T> =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; object: T }
  | { type: "BOOKMARK"; resourceVersion: string }
  | { type: "EXPIRED"; message: string }
  | { type: "CLOSED"; error?: Error };

export type WatchHandler<T> = (event: WatchEvent<T>) => void;

/** Stops a watch; no event is delivered after it returns. */
export type StopWatch = () => void;

export interface DeleteOptions {
  /** Delete only if the stored object still has this resourceVersion (ConflictError otherwise). */
  resourceVersion?: string;
  /** Delete only if the stored object is this incarnation (ConflictError otherwise). */
  uid?: string;
}

export interface MutateOptions {
  /** Conflicts retried before giving up (default 12). */
  retries?: number;
  /** Write through the status subresource (updateStatus) instead of update. */
  status?: boolean;
  /** Backoff of the first retry in ms (default 5); doubles per retry, full jitter, capped at maxBackoffMs. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Which incarnation of an object an apply may touch. */
export interface ApplyOptions {
  /** Only this incarnation (ConflictError when the name now holds another, NotFoundError when gone). */
  uid?: string;
}

export type StatusOf<K extends Kind> = NonNullable<ObjectOf<K>["status"]>;

/**
 * A change applied by mutate(). It may change the object in place or return a new one. When the
 * result equals what was read, nothing is written (no API write for a no-op).
 */
export type Mutation<T> = (current: T) => T | undefined | Promise<T | undefined>;

/**
 * Only the objects whose fields equal these values, by dotted path (`{ "spec.affinity": "node-a" }`):
 * a reader that needs a few objects of a large collection. The kubernetes backend asks the
 * apiserver for them (fieldSelector; the kind's CRD declares the field in selectableFields), so
 * nothing else crosses the wire; the etcd backend reads the whole prefix and filters.
 */
export type FieldSelection = Readonly<Record<string, string>>;

/** Whether obj matches the selection; an object without the field (a bare deletion) does not decide. */
export function selects(selection: FieldSelection | undefined, obj: unknown): boolean {
  if (!selection) return true;
  for (const [path, want] of Object.entries(selection)) {
    let v: unknown = obj;
    for (const part of path.split("."))
      v = v && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined;
    if (v === undefined) continue;
    if (String(v) !== want) return false;
  }
  return true;
}

/** The apiserver's fieldSelector for a selection. */
export function fieldSelector(selection: FieldSelection | undefined): string | undefined {
  if (!selection) return undefined;
  const parts = Object.entries(selection).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(",") : undefined;
}

export interface Store {
  /** Which backend this is, for logs and metrics ("kubernetes", "etcd"). */
  readonly backend: string;
  get<K extends Kind>(kind: K, name: string): Promise<ObjectOf<K> | undefined>;
  list<K extends Kind>(kind: K, selection?: FieldSelection): Promise<ListResult<ObjectOf<K>>>;
  /** Events after fromResourceVersion ("" or undefined: from now). */
  watch<K extends Kind>(
    kind: K,
    fromResourceVersion: string | undefined,
    handler: WatchHandler<ObjectOf<K>>,
    selection?: FieldSelection,
  ): StopWatch;
  /** AlreadyExistsError when the name is taken. Returns the stored object (with its resourceVersion). */
  create<K extends Kind>(kind: K, obj: ObjectOf<K>): Promise<ObjectOf<K>>;
  /** Compare-and-swap on obj.metadata.resourceVersion (required): ConflictError when it moved on. */
  update<K extends Kind>(kind: K, obj: ObjectOf<K>): Promise<ObjectOf<K>>;
  /** The status only, also compare-and-swap on obj.metadata.resourceVersion. */
  updateStatus<K extends Kind>(kind: K, obj: ObjectOf<K>): Promise<ObjectOf<K>>;
  /**
   * False when there was nothing to delete. An object with finalizers stays (marked for deletion)
   * until they are removed.
   */
  delete<K extends Kind>(kind: K, name: string, opts?: DeleteOptions): Promise<boolean>;
  /**
   * Server-side apply under this store's field manager, for objects one writer owns whole
   * (RouteIntent, the spec of a NodeNetworkStatus): obj carries every label, annotation, owner
   * reference and spec field the writer owns. Creates the object when absent; whatever the writer
   * set before and leaves out now is removed; finalizers and status are left alone.
   */
  apply<K extends Kind>(kind: K, obj: ObjectOf<K>): Promise<ObjectOf<K>>;
  /**
   * Server-side apply of the status alone (the writer owns the whole status): fields it leaves out
   * are removed. NotFoundError when the object does not exist.
   */
  applyStatus<K extends Kind>(kind: K, name: string, status: StatusOf<K>): Promise<ObjectOf<K>>;
  /**
   * Adds (present) or drops one finalizer this writer owns, leaving the spec, the status and other
   * writers' finalizers alone. NotFoundError when the object does not exist. Finalizers are applied
   * under their own field manager (`<manager>-finalizer`): one manager's apply holds everything it
   * owns, so applying only a finalizer under the manager that applied the spec would drop the spec.
   */
  applyFinalizer<K extends Kind>(
    kind: K,
    name: string,
    finalizer: string,
    present: boolean,
    opts?: ApplyOptions,
  ): Promise<ObjectOf<K>>;
  /** Read, apply fn, write with compare-and-swap; conflicts are retried (see mutateWith). */
  mutate<K extends Kind>(
    kind: K,
    name: string,
    fn: Mutation<ObjectOf<K>>,
    opts?: MutateOptions,
  ): Promise<ObjectOf<K>>;
}

export class StoreError extends Error {
  constructor(
    message: string,
    readonly kind: string,
    readonly objectName: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class NotFoundError extends StoreError {
  constructor(kind: string, name: string) {
    super(`${kind} ${name} not found`, kind, name);
  }
}

export class AlreadyExistsError extends StoreError {
  constructor(kind: string, name: string) {
    super(`${kind} ${name} already exists`, kind, name);
  }
}

/** The object changed since it was read (compare-and-swap lost), or a delete precondition failed. */
export class ConflictError extends StoreError {
  constructor(kind: string, name: string, detail = "it was modified since it was read") {
    super(`${kind} ${name}: ${detail}`, kind, name);
  }
}

/** The backend refused the object as invalid; the message names the field. */
export class InvalidError extends StoreError {}

/** mutate() lost every compare-and-swap it tried. */
export class TooManyConflictsError extends StoreError {
  constructor(
    kind: string,
    name: string,
    readonly attempts: number,
  ) {
    super(
      `${kind} ${name}: gave up after ${attempts} attempts, every write conflicted with a concurrent writer`,
      kind,
      name,
    );
  }
}
