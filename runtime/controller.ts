import { createLogger, errorMessage, type Logger } from "../lib/index.js";
import { reconcileSeconds, reconcileTotal } from "./metrics.js";
import { WorkQueue, type WorkQueueOptions } from "./workqueue.js";

/** What a reconciliation asks for: come back after this many ms (level-triggered polling). */
export interface ReconcileResult {
  requeueAfter?: number;
}

/**
 * controller-runtime's shape: given a key, make the world match the spec for that key. Returning
 * means done (or come back later); throwing means retry with this key's backoff.
 */
export interface Reconciler {
  // biome-ignore lint/suspicious/noConfusingVoidType: an async reconcile that returns nothing is Promise<void>
  reconcile(key: string): Promise<ReconcileResult | undefined | void>;
}

export interface ControllerOptions extends WorkQueueOptions {
  /** Keys processed in parallel (never the same key twice at once). Default 1. */
  workers?: number;
  logger?: Logger;
}

/** Runs a Reconciler over a WorkQueue with a number of workers. */
export class Controller {
  readonly queue: WorkQueue<string>;
  private readonly log: Logger;
  private workers: Promise<void>[] = [];

  constructor(
    readonly name: string,
    private readonly reconciler: Reconciler,
    private readonly opts: ControllerOptions = {},
  ) {
    this.queue = new WorkQueue<string>({ name, ...opts });
    this.log = opts.logger ?? createLogger(`controller/${name}`);
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  start(): void {
    if (this.workers.length) return;
    const n = Math.max(1, this.opts.workers ?? 1);
    for (let i = 0; i < n; i++) this.workers.push(this.work());
  }

  /** Finishes what is queued (drain) or only what is in flight, then returns. */
  async stop(drain = true): Promise<void> {
    await this.queue.shutdown(drain);
    await Promise.all(this.workers);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const end = reconcileSeconds.startTimer({ controller: this.name });
      try {
        const result = await this.reconciler.reconcile(key);
        this.queue.forget(key);
        if (result?.requeueAfter !== undefined && result.requeueAfter >= 0) {
          reconcileTotal.inc({ controller: this.name, result: "requeue" });
          this.queue.addAfter(key, result.requeueAfter);
        } else {
          reconcileTotal.inc({ controller: this.name, result: "success" });
        }
      } catch (err) {
        reconcileTotal.inc({ controller: this.name, result: "error" });
        this.log.warn("reconcile failed, will retry", {
          key,
          attempt: this.queue.numRequeues(key) + 1,
          error: errorMessage(err),
        });
        this.queue.addRateLimited(key);
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }
}
