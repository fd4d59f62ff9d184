import type * as k8s from "@kubernetes/client-node";
import type { FieldSelection, Kind, ObjectOf, Store } from "../datastore/index.js";
import { Informer, type InformerOptions } from "./informer.js";
import { type CoreKind, coreListWatch, type MetaObject, storeListWatch } from "./listwatch.js";

export interface InformerCacheOptions {
  /** Periodic resync of every informer (default 5 min). */
  resyncMs?: number;
  /** Only nodes with these labels (kubectl syntax): one process per shard of nodes. */
  nodeSelector?: string;
  /**
   * Kinds this process needs only part of, and which part: an agent holds its own node's
   * IPAMBlocks (`{ IPAMBlock: { "spec.affinity": node } }`), not every block of the cluster.
   */
  selections?: Partial<Record<Kind, FieldSelection>>;
}

/**
 * One informer per kind, shared by every part of a process that reads that kind (controller-runtime's
 * cache): the controller's reconcilers, the agent's dataplane and BGP sides and the IPAM client all
 * read the same copy. An informer asked for after start() starts at once.
 */
export class InformerCache {
  private readonly informers = new Map<string, Informer<MetaObject>>();
  private started = false;

  constructor(
    private readonly store: Store,
    private readonly kc: k8s.KubeConfig | undefined,
    private readonly opts: InformerCacheOptions = {},
  ) {}

  /** A weft.dev kind from the Store (the part of it the cache's selections say, if any). */
  kind<K extends Kind>(kind: K): Informer<ObjectOf<K>> {
    const selection = this.opts.selections?.[kind];
    return this.get(
      kind,
      () => new Informer(storeListWatch(this.store, kind, selection), this.informerOptions()),
    );
  }

  /** Whether the cache holds only part of this kind (readers needing the rest must ask for it). */
  partial(kind: Kind): boolean {
    return this.opts.selections?.[kind] !== undefined;
  }

  /** Nodes, filtered by the cache's node selector. */
  nodes(): Informer<k8s.V1Node> {
    const selector = this.opts.nodeSelector;
    return this.core<k8s.V1Node>("Node", selector ? { labelSelector: selector } : {});
  }

  pods(): Informer<k8s.V1Pod> {
    return this.core<k8s.V1Pod>("Pod", {});
  }

  services(): Informer<k8s.V1Service> {
    return this.core<k8s.V1Service>("Service", {});
  }

  /** discovery.k8s.io/v1 EndpointSlices, typed by the caller (the client's type is far wider than needed). */
  endpointSlices<T extends MetaObject = k8s.V1EndpointSlice>(): Informer<T> {
    return this.core<T>("EndpointSlice", {});
  }

  /** Starts every informer, and from now on every one created later. */
  start(): void {
    this.started = true;
    for (const i of this.informers.values()) i.start();
  }

  async waitForSync(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync()));
  }

  hasSynced(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced());
  }

  /** Descriptions of the informers still listing. */
  unsynced(): string[] {
    return [...this.informers.values()].filter((i) => !i.hasSynced()).map((i) => i.lw.description);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }

  private core<T extends MetaObject>(kind: CoreKind, opts: { labelSelector?: string }): Informer<T> {
    const kc = this.kc;
    if (!kc) throw new Error(`informer cache: ${kind} needs a kubeconfig`);
    return this.get(kind, () => new Informer(coreListWatch<T>(kc, kind, opts), this.informerOptions()));
  }

  private get<T extends MetaObject>(key: string, make: () => Informer<T>): Informer<T> {
    let informer = this.informers.get(key) as Informer<T> | undefined;
    if (!informer) {
      informer = make();
      this.informers.set(key, informer as unknown as Informer<MetaObject>);
      if (this.started) informer.start();
    }
    return informer;
  }

  private informerOptions(): InformerOptions {
    return { resyncMs: this.opts.resyncMs ?? 5 * 60_000 };
  }
}
