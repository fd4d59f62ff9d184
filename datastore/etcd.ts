import { randomUUID } from "node:crypto";
import type { Etcd3, IKeyValue, IRequestOp, ITxnResponse } from "etcd3";
import { API_VERSION, PLURALS } from "../api/index.js";
import { errorMessage } from "../lib/index.js";
import { applyEmulated, applyFinalizerEmulated, applyStatusEmulated } from "./applyemulated.js";
import { createEtcdClient, DEFAULT_ETCD_PREFIX, type EtcdConnectionOptions } from "./etcdconfig.js";
import {
  decodeObject,
  encodeObject,
  ObjectRuleError,
  prepareCreate,
  prepareDelete,
  prepareUpdate,
  prepareUpdateStatus,
  type StoredObject,
  type UpdateResult,
} from "./etcdobject.js";
import { etcdWatch, prefixEnd } from "./etcdwatch.js";
import { conflictsTotal, writesTotal } from "./metrics.js";
import { mutateWith } from "./mutate.js";
import {
  AlreadyExistsError,
  type ApplyOptions,
  ConflictError,
  type DeleteOptions,
  type FieldSelection,
  InvalidError,
  type Kind,
  type ListResult,
  type MutateOptions,
  type Mutation,
  NotFoundError,
  type ObjectOf,
  type StatusOf,
  type StopWatch,
  type Store,
  StoreError,
  selects,
  type WatchHandler,
} from "./store.js";

export interface EtcdStoreOptions {
  /** Key prefix (default /weft/v1alpha1): objects live at `<prefix>/<plural>/<name>`. */
  prefix?: string;
  /** Keys per range request of a list (default 500); all pages are read at one revision. */
  pageSize?: number;
  /** Clock for timestamps (tests). */
  now?: () => Date;
}

/** How often a delete or a finalizer-marking write is retried against concurrent writers. */
const DELETE_ATTEMPTS = 20;

/**
 * weft.dev objects in etcd v3: one key per object holding the same JSON the apiserver would
 * serve; resourceVersion is the key's mod revision; create is a transaction on create revision 0;
 * update, updateStatus and delete are transactions on the mod revision that was read. The
 * apiserver's write semantics (status subresource, generation, finalizers) come from
 * etcdobject.ts.
 */
export class EtcdStore implements Store {
  readonly backend = "etcd";
  readonly prefix: string;
  private readonly ownsClient: boolean;
  readonly client: Etcd3;

  constructor(
    client: Etcd3 | EtcdConnectionOptions,
    private readonly opts: EtcdStoreOptions = {},
  ) {
    if ("endpoints" in client) {
      this.client = createEtcdClient(client);
      this.ownsClient = true;
      this.prefix = opts.prefix ?? client.prefix ?? DEFAULT_ETCD_PREFIX;
    } else {
      this.client = client;
      this.ownsClient = false;
      this.prefix = opts.prefix ?? DEFAULT_ETCD_PREFIX;
    }
  }

  /** Closes the client if this store created it. */
  close(): void {
    if (this.ownsClient) this.client.close();
  }

  kindPrefix(kind: Kind): string {
    return `${this.prefix}/${PLURALS[kind]}/`;
  }

  key(kind: Kind, name: string): Buffer {
    return Buffer.from(this.kindPrefix(kind) + name);
  }

  private now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  private wrap(err: unknown, kind: Kind, name: string, verb: string): never {
    if (err instanceof StoreError) throw err;
    if (err instanceof ObjectRuleError) {
      throw new InvalidError(`${kind} ${name} is invalid: ${err.message}`, kind, name, { cause: err });
    }
    const why = errorMessage(err);
    throw new StoreError(`${verb} ${kind} ${name}: etcd: ${why}`, kind, name, { cause: err });
  }

  private decode<K extends Kind>(kv: IKeyValue): ObjectOf<K> {
    return decodeObject<ObjectOf<K>>(kv.value, kv.mod_revision);
  }

  private async read(kind: Kind, name: string): Promise<IKeyValue | undefined> {
    const res = await this.client.kv.range({ key: this.key(kind, name) });
    return res.kvs[0];
  }

  async get<K extends Kind>(kind: K, name: string): Promise<ObjectOf<K> | undefined> {
    try {
      const kv = await this.read(kind, name);
      return kv ? this.decode<K>(kv) : undefined;
    } catch (err) {
      this.wrap(err, kind, name, "get");
    }
  }

  async list<K extends Kind>(kind: K, selection?: FieldSelection): Promise<ListResult<ObjectOf<K>>> {
    const start = Buffer.from(this.kindPrefix(kind));
    const end = prefixEnd(start);
    const limit = this.opts.pageSize ?? 500;
    for (;;) {
      try {
        const items: ObjectOf<K>[] = [];
        let revision: string | undefined;
        let from = start;
        for (;;) {
          const res = await this.client.kv.range({
            key: from,
            range_end: end,
            limit,
            ...(revision ? { revision } : {}),
          });
          // Later pages are read at the first page's revision: one consistent snapshot.
          revision ??= res.header.revision;
          for (const kv of res.kvs) {
            const obj = this.decode<K>(kv);
            if (selects(selection, obj)) items.push(obj);
          }
          const last = res.kvs.at(-1);
          if (!res.more || !last) break;
          from = Buffer.concat([last.key, Buffer.from([0])]);
        }
        return { items, resourceVersion: revision ?? "0" };
      } catch (err) {
        // The snapshot was compacted between pages: start over at a newer one.
        if (err instanceof Error && /compacted/.test(err.message)) continue;
        this.wrap(err, kind, "(list)", "list");
      }
    }
  }

  watch<K extends Kind>(
    kind: K,
    fromResourceVersion: string | undefined,
    handler: WatchHandler<ObjectOf<K>>,
    selection?: FieldSelection,
  ): StopWatch {
    const prefix = this.kindPrefix(kind);
    const filtered: WatchHandler<ObjectOf<K>> = selection
      ? (ev) => {
          if (!("object" in ev) || selects(selection, ev.object)) handler(ev);
        }
      : handler;
    return etcdWatch<ObjectOf<K>>(
      this.client,
      {
        prefix,
        fromRevision: fromResourceVersion,
        decode: (kv) => this.decode<K>(kv),
        decodeDeleted: (kv, prev) => {
          if (prev?.value?.length) return decodeObject(prev.value, kv.mod_revision);
          const name = kv.key.toString().slice(prefix.length);
          return { apiVersion: API_VERSION, kind, metadata: { name, resourceVersion: kv.mod_revision } };
        },
      },
      filtered,
    );
  }

  private txn(compare: Parameters<Etcd3["kv"]["txn"]>[0]["compare"], success: IRequestOp[], key: Buffer) {
    return this.client.kv.txn({ compare, success, failure: [{ request_range: { key } }] });
  }

  /** The failure branch's read: why a guarded write did not apply. */
  private failed(res: ITxnResponse): IKeyValue | undefined {
    return res.responses[0]?.response_range?.kvs[0];
  }

  async create<K extends Kind>(kind: K, obj: ObjectOf<K>): Promise<ObjectOf<K>> {
    const name = obj.metadata?.name ?? "";
    writesTotal.inc({ kind, verb: "create" });
    try {
      const stored = prepareCreate(obj as unknown as StoredObject, kind, randomUUID(), this.now());
      const key = this.key(kind, name);
      const res = await this.txn(
        [{ key, target: "Create", result: "Equal", create_revision: 0 }],
        [{ request_put: { key, value: Buffer.from(encodeObject(stored)) } }],
        key,
      );
      if (!res.succeeded) throw new AlreadyExistsError(kind, name);
      return { ...stored, metadata: { ...stored.metadata, resourceVersion: res.header.revision } } as never;
    } catch (err) {
      this.wrap(err, kind, name, "create");
    }
  }

  /**
   * Writes `result` in place of the object at revision rv (or deletes it), or throws
   * ConflictError / NotFoundError when the key moved on or is gone.
   */
  private async commit<K extends Kind>(
    kind: K,
    name: string,
    rv: string,
    verb: string,
    result: UpdateResult<StoredObject>,
    current: ObjectOf<K>,
  ): Promise<ObjectOf<K>> {
    if (!result.next) return current;
    const key = this.key(kind, name);
    const op: IRequestOp = result.remove
      ? { request_delete_range: { key } }
      : { request_put: { key, value: Buffer.from(encodeObject(result.next)) } };
    const res = await this.txn([{ key, target: "Mod", result: "Equal", mod_revision: rv }], [op], key);
    if (!res.succeeded) {
      if (!this.failed(res)) throw new NotFoundError(kind, name);
      conflictsTotal.inc({ kind, verb });
      throw new ConflictError(kind, name);
    }
    return {
      ...result.next,
      metadata: { ...result.next.metadata, resourceVersion: res.header.revision },
    } as never;
  }

  private async replace<K extends Kind>(kind: K, obj: ObjectOf<K>, status: boolean): Promise<ObjectOf<K>> {
    const name = obj.metadata?.name ?? "";
    const verb = status ? "updateStatus" : "update";
    const rv = obj.metadata?.resourceVersion;
    if (!rv)
      throw new StoreError(`${verb} ${kind} ${name}: metadata.resourceVersion is required`, kind, name);
    writesTotal.inc({ kind, verb });
    try {
      const kv = await this.read(kind, name);
      if (!kv) throw new NotFoundError(kind, name);
      if (kv.mod_revision !== rv) {
        conflictsTotal.inc({ kind, verb });
        throw new ConflictError(kind, name);
      }
      const stored = this.decode<K>(kv);
      const s = stored as unknown as StoredObject;
      const o = obj as unknown as StoredObject;
      const result = status ? prepareUpdateStatus(s, o) : prepareUpdate(s, o);
      return await this.commit(kind, name, rv, verb, result, stored);
    } catch (err) {
      this.wrap(err, kind, name, verb);
    }
  }

  update<K extends Kind>(kind: K, obj: ObjectOf<K>): Promise<ObjectOf<K>> {
    return this.replace(kind, obj, false);
  }

  updateStatus<K extends Kind>(kind: K, obj: ObjectOf<K>): Promise<ObjectOf<K>> {
    return this.replace(kind, obj, true);
  }

  async delete<K extends Kind>(kind: K, name: string, opts: DeleteOptions = {}): Promise<boolean> {
    writesTotal.inc({ kind, verb: "delete" });
    try {
      for (let attempt = 0; attempt < DELETE_ATTEMPTS; attempt++) {
        const kv = await this.read(kind, name);
        if (!kv) return false;
        const stored = this.decode<K>(kv);
        if (opts.resourceVersion && opts.resourceVersion !== kv.mod_revision) {
          throw new ConflictError(
            kind,
            name,
            `precondition failed: resourceVersion is ${kv.mod_revision}, not ${opts.resourceVersion}`,
          );
        }
        if (opts.uid && opts.uid !== stored.metadata.uid) {
          throw new ConflictError(
            kind,
            name,
            `precondition failed: uid is ${stored.metadata.uid}, not ${opts.uid}`,
          );
        }
        const key = this.key(kind, name);
        const marking = prepareDelete(stored as unknown as StoredObject, this.now());
        const op: IRequestOp | undefined = !marking
          ? { request_delete_range: { key } }
          : marking.next
            ? { request_put: { key, value: Buffer.from(encodeObject(marking.next)) } }
            : undefined;
        if (!op) return true; // already marked for deletion, waiting for its finalizers
        const res = await this.txn(
          [{ key, target: "Mod", result: "Equal", mod_revision: kv.mod_revision }],
          [op],
          key,
        );
        if (res.succeeded) return true;
        conflictsTotal.inc({ kind, verb: "delete" });
      }
      throw new ConflictError(kind, name, "every delete attempt raced with a concurrent writer");
    } catch (err) {
      this.wrap(err, kind, name, "delete");
    }
  }

  mutate<K extends Kind>(
    kind: K,
    name: string,
    fn: Mutation<ObjectOf<K>>,
    opts?: MutateOptions,
  ): Promise<ObjectOf<K>> {
    return mutateWith(this, kind, name, fn, opts);
  }

  apply<K extends Kind>(kind: K, obj: ObjectOf<K>): Promise<ObjectOf<K>> {
    return applyEmulated(this, kind, obj);
  }

  applyStatus<K extends Kind>(kind: K, name: string, status: StatusOf<K>): Promise<ObjectOf<K>> {
    return applyStatusEmulated(this, kind, name, status);
  }

  applyFinalizer<K extends Kind>(
    kind: K,
    name: string,
    finalizer: string,
    present: boolean,
    opts?: ApplyOptions,
  ): Promise<ObjectOf<K>> {
    return applyFinalizerEmulated(this, kind, name, finalizer, present, opts);
  }

  /** Compacts etcd's history up to the current revision (tests, and operators through weftctl). */
  async compact(): Promise<string> {
    const res = await this.client.kv.range({ key: Buffer.from(this.prefix), limit: 1, keys_only: true });
    await this.client.kv.compact({ revision: res.header.revision, physical: true });
    return res.header.revision;
  }
}
