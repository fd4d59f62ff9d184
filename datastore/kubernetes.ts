import * as k8s from "@kubernetes/client-node";
import { API_VERSION, GROUP, PLURALS, VERSION } from "../api/index.js";
import { type KubeWatchOptions, kubeWatch } from "./kubewatch.js";
import { conflictsTotal, writesTotal } from "./metrics.js";
import { mutateWith } from "./mutate.js";
import {
  AlreadyExistsError,
  type ApplyOptions,
  ConflictError,
  type DeleteOptions,
  type FieldSelection,
  fieldSelector,
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
  type WatchHandler,
} from "./store.js";

export interface KubernetesStoreOptions {
  /** Page size of list calls (default 500); a list is one consistent snapshot across pages. */
  pageSize?: number;
  watch?: KubeWatchOptions;
  /**
   * Recorded by the apiserver in managedFields for every write (default "weft"), so `kubectl get
   * -o yaml --show-managed-fields` and GitOps tools see which component owns what.
   */
  fieldManager?: string;
}

interface KubeStatus {
  code?: number;
  reason?: string;
  message?: string;
}

/** The apiserver's Status from an ApiException, whose body may arrive as text or parsed. */
function statusOf(err: unknown): KubeStatus {
  const body = (err as { body?: unknown }).body;
  if (typeof body === "string") {
    try {
      return JSON.parse(body) as KubeStatus;
    } catch {
      return { message: body };
    }
  }
  return (body as KubeStatus | undefined) ?? {};
}

function codeOf(err: unknown): number | undefined {
  return err instanceof k8s.ApiException ? err.code : undefined;
}

/** weft.dev objects as custom resources (CRDs in crds/) through @kubernetes/client-node. */
export class KubernetesStore implements Store {
  readonly backend = "kubernetes";
  private readonly api: k8s.CustomObjectsApi;
  private get fieldManager(): string {
    return this.opts.fieldManager ?? "weft";
  }

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly opts: KubernetesStoreOptions = {},
  ) {
    this.api = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  private params(kind: Kind) {
    return { group: GROUP, version: VERSION, plural: PLURALS[kind] };
  }

  /** Translates apiserver failures into the Store's typed errors. */
  private fail(err: unknown, kind: Kind, name: string, verb: string): never {
    const code = codeOf(err);
    const status = statusOf(err);
    if (code === 404) throw new NotFoundError(kind, name);
    if (code === 409) {
      if (verb === "create" || status.reason === "AlreadyExists") throw new AlreadyExistsError(kind, name);
      // An apply that names a uid, to an object that is gone.
      if (status.message?.includes("no existing object was found")) throw new NotFoundError(kind, name);
      conflictsTotal.inc({ kind, verb });
      throw new ConflictError(kind, name, status.message ? `conflict: ${status.message}` : undefined);
    }
    // An apply that names a uid, to another incarnation of the name.
    if (code === 422 && status.message?.includes("metadata.uid")) {
      conflictsTotal.inc({ kind, verb });
      throw new ConflictError(kind, name, "it was deleted and created again since it was read");
    }
    if (code === 422 || code === 400) {
      throw new InvalidError(`${kind} ${name} is invalid: ${status.message ?? "refused"}`, kind, name, {
        cause: err,
      });
    }
    const why = status.message ?? (err instanceof Error ? err.message.split("\n")[0] : String(err));
    throw new StoreError(`${verb} ${kind} ${name}: ${code ? `HTTP ${code}: ` : ""}${why}`, kind, name, {
      cause: err,
    });
  }

  async get<K extends Kind>(kind: K, name: string): Promise<ObjectOf<K> | undefined> {
    try {
      return (await this.api.getClusterCustomObject({ ...this.params(kind), name })) as ObjectOf<K>;
    } catch (err) {
      if (codeOf(err) === 404) return undefined;
      this.fail(err, kind, name, "get");
    }
  }

  async list<K extends Kind>(kind: K, selection?: FieldSelection): Promise<ListResult<ObjectOf<K>>> {
    const limit = this.opts.pageSize ?? 500;
    for (;;) {
      const items: ObjectOf<K>[] = [];
      let resourceVersion = "";
      let cont: string | undefined;
      try {
        do {
          const page = (await this.api.listClusterCustomObject({
            ...this.params(kind),
            limit,
            _continue: cont,
            fieldSelector: fieldSelector(selection),
          })) as { items: ObjectOf<K>[]; metadata?: { resourceVersion?: string; continue?: string } };
          items.push(...page.items);
          // Later pages belong to the first page's snapshot; its version is the list's.
          if (!cont) resourceVersion = page.metadata?.resourceVersion ?? "";
          cont = page.metadata?.continue || undefined;
        } while (cont);
        return { items, resourceVersion };
      } catch (err) {
        // The continue token expired between pages: the snapshot is gone, start over.
        if (codeOf(err) === 410 && cont) continue;
        this.fail(err, kind, "(list)", "list");
      }
    }
  }

  watch<K extends Kind>(
    kind: K,
    fromResourceVersion: string | undefined,
    handler: WatchHandler<ObjectOf<K>>,
    selection?: FieldSelection,
  ): StopWatch {
    const path = `/apis/${GROUP}/${VERSION}/${PLURALS[kind]}`;
    const fields = fieldSelector(selection);
    return kubeWatch(this.kc, path, fromResourceVersion, handler, {
      ...this.opts.watch,
      ...(fields ? { fieldSelector: fields } : {}),
    });
  }

  async create<K extends Kind>(kind: K, obj: ObjectOf<K>): Promise<ObjectOf<K>> {
    const { resourceVersion: _rv, uid: _uid, ...metadata } = obj.metadata;
    const body = { ...obj, apiVersion: API_VERSION, kind, metadata };
    writesTotal.inc({ kind, verb: "create" });
    try {
      return (await this.api.createClusterCustomObject({
        ...this.params(kind),
        body,
        fieldManager: this.fieldManager,
      })) as ObjectOf<K>;
    } catch (err) {
      this.fail(err, kind, obj.metadata.name, "create");
    }
  }

  private async replace<K extends Kind>(kind: K, obj: ObjectOf<K>, status: boolean): Promise<ObjectOf<K>> {
    const name = obj.metadata.name;
    const verb = status ? "updateStatus" : "update";
    if (!obj.metadata.resourceVersion) {
      // Without it the apiserver would overwrite blindly; the Store promises compare-and-swap.
      throw new StoreError(`${verb} ${kind} ${name}: metadata.resourceVersion is required`, kind, name);
    }
    const body = { ...obj, apiVersion: API_VERSION, kind };
    writesTotal.inc({ kind, verb });
    try {
      const req = { ...this.params(kind), name, body, fieldManager: this.fieldManager };
      const out = status
        ? await this.api.replaceClusterCustomObjectStatus(req)
        : await this.api.replaceClusterCustomObject(req);
      return out as ObjectOf<K>;
    } catch (err) {
      this.fail(err, kind, name, verb);
    }
  }

  update<K extends Kind>(kind: K, obj: ObjectOf<K>): Promise<ObjectOf<K>> {
    return this.replace(kind, obj, false);
  }

  updateStatus<K extends Kind>(kind: K, obj: ObjectOf<K>): Promise<ObjectOf<K>> {
    return this.replace(kind, obj, true);
  }

  /** PATCH as application/apply-patch+yaml, forced: fieldManager takes what body names. */
  private async serverSideApply<K extends Kind>(
    kind: K,
    name: string,
    body: object,
    verb: "apply" | "applyStatus" | "applyFinalizer",
    fieldManager: string,
  ): Promise<ObjectOf<K>> {
    writesTotal.inc({ kind, verb });
    const req = { ...this.params(kind), name, body, fieldManager, force: true };
    const options = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.ServerSideApply);
    try {
      const out =
        verb === "applyStatus"
          ? await this.api.patchClusterCustomObjectStatus(req, options)
          : await this.api.patchClusterCustomObject(req, options);
      return out as ObjectOf<K>;
    } catch (err) {
      this.fail(err, kind, name, verb);
    }
  }

  apply<K extends Kind>(kind: K, obj: ObjectOf<K>): Promise<ObjectOf<K>> {
    const { name, labels, annotations, ownerReferences } = obj.metadata;
    const metadata = { name, labels, annotations, ownerReferences };
    const body = { apiVersion: API_VERSION, kind, metadata, spec: obj.spec };
    return this.serverSideApply(kind, name, body, "apply", this.fieldManager);
  }

  applyStatus<K extends Kind>(kind: K, name: string, status: StatusOf<K>): Promise<ObjectOf<K>> {
    // No uid precondition here: the status subresource ignores metadata.
    const body = { apiVersion: API_VERSION, kind, metadata: { name }, status };
    return this.serverSideApply(kind, name, body, "applyStatus", this.fieldManager);
  }

  async applyFinalizer<K extends Kind>(
    kind: K,
    name: string,
    finalizer: string,
    present: boolean,
    opts: ApplyOptions = {},
  ): Promise<ObjectOf<K>> {
    // Without a uid an apply to a missing object would try to create it from the metadata alone.
    const uid = opts.uid ?? (await this.get(kind, name))?.metadata.uid;
    if (!uid) throw new NotFoundError(kind, name);
    // Leaving the finalizer out is how this field manager gives it up.
    const metadata = { name, uid, finalizers: present ? [finalizer] : undefined };
    const body = { apiVersion: API_VERSION, kind, metadata };
    return this.serverSideApply(kind, name, body, "applyFinalizer", `${this.fieldManager}-finalizer`);
  }

  async delete<K extends Kind>(kind: K, name: string, opts: DeleteOptions = {}): Promise<boolean> {
    const preconditions =
      opts.resourceVersion || opts.uid ? { resourceVersion: opts.resourceVersion, uid: opts.uid } : undefined;
    writesTotal.inc({ kind, verb: "delete" });
    try {
      await this.api.deleteClusterCustomObject({
        ...this.params(kind),
        name,
        body: preconditions ? { preconditions } : undefined,
      });
      return true;
    } catch (err) {
      if (codeOf(err) === 404) return false;
      this.fail(err, kind, name, "delete");
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
}
