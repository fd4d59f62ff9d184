import { Controller, type ControllerOptions, type ReconcileFn, type Reconciler } from "./controller.js";
import { type Informer, objectKey } from "./informer.js";
import type { MetaObject } from "./listwatch.js";
import { filtered, type Predicate } from "./predicates.js";

/** The keys an object maps to (none, one or several). */
export type MapFn<T> = (obj: T) => string | Iterable<string> | undefined;

export interface WatchOptions<T> {
  /** Only events this passes enqueue anything (compose with and/or/not). */
  predicate?: Predicate<T>;
  /** Keys wait this long before they are reconciled, so a burst of changes costs one pass. */
  delayMs?: number;
}

interface Watch {
  informer: Informer<MetaObject>;
  map: MapFn<MetaObject>;
  opts: WatchOptions<MetaObject>;
}

/**
 * Builds a Controller the way controller-runtime's builder does:
 *
 *     new ControllerBuilder("ipam-node", { workers: 4 })
 *       .for(nodes, { predicate: labelsChanged })
 *       .watches(pools, () => nodes.keys(), { predicate: generationChanged })
 *       .complete(reconciler)
 *
 * `for` reconciles an informer's own objects by their key; `watches` maps another kind's objects
 * to keys. An update enqueues the keys of both the old and the new object, so an object that
 * moves (a block changing hands) brings back both sides. Nothing is heard before the controller
 * starts, which the Manager does only once every cache has synced.
 */
export class ControllerBuilder {
  private readonly watched: Watch[] = [];

  constructor(
    readonly name: string,
    private readonly options: ControllerOptions = {},
  ) {}

  /** The informer whose objects are reconciled, keyed as objectKey (`namespace/name` or `name`). */
  for<T extends MetaObject>(informer: Informer<T>, opts: WatchOptions<NoInfer<T>> = {}): this {
    return this.watches(informer, objectKey, opts);
  }

  /** Events of another informer, mapped to the keys they affect. */
  watches<T extends MetaObject>(
    informer: Informer<T>,
    map: MapFn<NoInfer<T>>,
    opts: WatchOptions<NoInfer<T>> = {},
  ): this {
    this.watched.push({ informer, map, opts } as unknown as Watch);
    return this;
  }

  complete(reconciler: Reconciler | ReconcileFn): Controller {
    const controller = new Controller(this.name, reconciler, this.options);
    for (const w of this.watched) controller.watch(() => w.informer.on(handlersFor(controller, w)));
    return controller;
  }
}

function handlersFor(controller: Controller, { map, opts }: Watch) {
  const delay = opts.delayMs ?? 0;
  const add = (key: string) => {
    if (!key) return;
    if (delay > 0) controller.queue.addAfter(key, delay);
    else controller.enqueue(key);
  };
  const keysOf = (obj: MetaObject): Iterable<string> => {
    const keys = map(obj);
    return keys === undefined ? [] : typeof keys === "string" ? [keys] : keys;
  };
  const enqueue = (obj: MetaObject) => {
    for (const key of keysOf(obj)) add(key);
  };
  return filtered(opts.predicate, {
    add: enqueue,
    update: (o, n) => {
      if (o === n) return enqueue(n);
      // each key once: a worker may take the first add at once, and a second would run it again
      for (const key of new Set([...keysOf(o), ...keysOf(n)])) add(key);
    },
    delete: enqueue,
  });
}
