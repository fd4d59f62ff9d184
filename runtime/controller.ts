import { createLogger, errorMessage, type Logger } from "../lib/index.js";
import { reconcileSeconds, reconcileTotal } from "./metrics.js";
import { WorkQueue, type WorkQueueOptions } from "./workqueue.js";

/** What a reconciliation asks for: come back after this many ms (level-triggered polling). */
export interface ReconcileResult {
  requeueAfter?: number;
}

// biome-ignore lint/suspicious/noConfusingVoidType: an async reconcile that returns nothing is Promise<void>
export type ReconcileOutcome = ReconcileResult | undefined | void;

/**
 * controller-runtime's shape: given a key, make the world match the spec for that key. Returning
 * means done (or come back later); throwing means retry with this key's backoff, unless what is
 * thrown is a TerminalError.
 */
export interface Reconciler {
  reconcile(key: string): Promise<ReconcileOutcome>;
}

export type ReconcileFn = (key: string) => Promise<ReconcileOutcome>;

/**
 * A failure that retrying cannot mend (an object that contradicts itself, a reference that can
 * never resolve): logged and counted, but the key is not requeued until an event brings it back,
 * that is, until the object (or something mapped to it) changes.
 */
export class TerminalError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TerminalError";
  }
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
  private readonly reconcile: ReconcileFn;
  private workers: Promise<void>[] = [];
  /** Event sources (informer handlers) attached when the controller starts, not before. */
  private readonly sources: Array<() => void> = [];

  constructor(
    readonly name: string,
    reconciler: Reconciler | ReconcileFn,
    private readonly opts: ControllerOptions = {},
  ) {
    this.queue = new WorkQueue<string>({ name, ...opts });
    this.log = opts.logger ?? createLogger(`controller/${name}`);
    this.reconcile = typeof reconciler === "function" ? reconciler : (key) => reconciler.reconcile(key);
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  /** Adds a source of keys, attached at start(): a controller hears nothing before its caches synced. */
  watch(attach: () => void): this {
    if (this.workers.length) attach();
    else this.sources.push(attach);
    return this;
  }

  start(): void {
    if (this.workers.length) return;
    for (const attach of this.sources.splice(0)) attach();
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
        const result = await this.reconcile(key);
        this.queue.forget(key);
        if (result?.requeueAfter !== undefined && result.requeueAfter >= 0) {
          reconcileTotal.inc({ controller: this.name, result: "requeue" });
          this.queue.addAfter(key, result.requeueAfter);
        } else {
          reconcileTotal.inc({ controller: this.name, result: "success" });
        }
      } catch (err) {
        this.failed(key, err);
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  private failed(key: string, err: unknown): void {
    const error = errorMessage(err);
    if (err instanceof TerminalError) {
      reconcileTotal.inc({ controller: this.name, result: "terminal" });
      this.queue.forget(key);
      this.log.error("reconcile failed for good; not retried until the object changes", { key, error });
      return;
    }
    reconcileTotal.inc({ controller: this.name, result: "error" });
    this.log.warn("reconcile failed, will retry", { key, attempt: this.queue.numRequeues(key) + 1, error });
    this.queue.addRateLimited(key);
  }
}
