/** Runs tasks one after another in call order; a task that fails does not stop the ones after it. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  /** Queues `task` behind every task queued before; resolves or rejects with its own outcome. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every task queued so far is over. */
  async idle(): Promise<void> {
    await this.tail;
  }
}

/**
 * A lock per key: tasks for one key run one after another in call order, tasks for different keys
 * run concurrently, and a key nobody waits on any more holds no memory.
 */
export class KeyedLock<K = string> {
  private readonly tails = new Map<K, Promise<unknown>>();

  /** Runs `task` once every task queued before it for `key` is over; resolves or rejects with its own outcome. */
  run<T>(key: K, task: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Keys with a task running or waiting. */
  get size(): number {
    return this.tails.size;
  }
}
