import { isDeepStrictEqual } from "node:util";
import { jitteredBackoff, sleep } from "../lib/index.js";
import {
  ConflictError,
  type Kind,
  type MutateOptions,
  type Mutation,
  NotFoundError,
  type ObjectOf,
  type Store,
  TooManyConflictsError,
} from "./store.js";

export const MUTATE_DEFAULTS = { retries: 12, baseBackoffMs: 5, maxBackoffMs: 1000 };

/**
 * Read-modify-write with compare-and-swap, shared by every backend. A conflict means somebody
 * else wrote in between: read again and re-apply fn (fn must therefore be a pure function of what
 * it is given). NotFoundError when the object does not exist; TooManyConflictsError after
 * `retries` lost races.
 */
export async function mutateWith<K extends Kind>(
  store: Pick<Store, "get" | "update" | "updateStatus">,
  kind: K,
  name: string,
  fn: Mutation<ObjectOf<K>>,
  opts: MutateOptions = {},
): Promise<ObjectOf<K>> {
  const retries = opts.retries ?? MUTATE_DEFAULTS.retries;
  const base = opts.baseBackoffMs ?? MUTATE_DEFAULTS.baseBackoffMs;
  const max = opts.maxBackoffMs ?? MUTATE_DEFAULTS.maxBackoffMs;
  for (let attempt = 0; ; attempt++) {
    const current = await store.get(kind, name);
    if (!current) throw new NotFoundError(kind, name);
    const before = structuredClone(current);
    const next = (await fn(current)) ?? current;
    if (isDeepStrictEqual(before, next)) return before;
    // The compare-and-swap is on what was read, whatever fn did to the metadata.
    next.metadata = { ...next.metadata, resourceVersion: before.metadata.resourceVersion };
    try {
      return opts.status ? await store.updateStatus(kind, next) : await store.update(kind, next);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      if (attempt >= retries) throw new TooManyConflictsError(kind, name, attempt + 1);
      await sleep(jitteredBackoff(attempt, base, max));
    }
  }
}
