import type { WatchHandler } from "../datastore/index.js";
import type { ListWatch } from "./listwatch.js";

export interface TestObject {
  metadata: {
    name: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
}

/**
 * A collection for informer tests: list() returns what was set before, and set()/remove() emit
 * watch events at once, each object with a new resourceVersion.
 */
export class TestCollection implements ListWatch<TestObject> {
  private rv = 0;
  private readonly objects = new Map<string, TestObject>();
  private readonly watchers = new Set<WatchHandler<TestObject>>();

  constructor(readonly description = "test") {}

  set(obj: TestObject): TestObject {
    const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    const existed = this.objects.has(obj.metadata.name);
    this.objects.set(obj.metadata.name, stored);
    for (const w of this.watchers)
      w({ type: existed ? "MODIFIED" : "ADDED", object: structuredClone(stored) });
    return stored;
  }

  remove(name: string): void {
    const obj = this.objects.get(name);
    if (!obj) return;
    this.objects.delete(name);
    for (const w of this.watchers) w({ type: "DELETED", object: structuredClone(obj) });
  }

  async list() {
    return {
      items: [...this.objects.values()].map((o) => structuredClone(o)),
      resourceVersion: String(this.rv),
    };
  }

  watch(_rv: string | undefined, handler: WatchHandler<TestObject>) {
    this.watchers.add(handler);
    return () => {
      this.watchers.delete(handler);
    };
  }
}
