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
