import { createLogger, type Logger } from "../lib/index.js";

export interface Stoppable {
  stop(): Promise<void> | void;
}

export interface ShutdownOptions {
  /** After this long the process exits with code 1 whatever is still running. Default 30 s. */
  timeoutMs?: number;
  logger?: Logger;
  /** How the process ends once every step ran (tests pass their own). */
  exit?: (code: number) => void;
}

/**
 * SIGTERM handling in one place: steps run one after the other in the order they were added, each
 * failure logged and the next step still run, the whole bounded by a timeout. For a controller the
 * order is: stop informers (no new work), drain the queues (finish the work), release the lease
 * (let the next replica start at once instead of after the lease expires).
 */
export class GracefulShutdown {
  private readonly steps: Array<{ name: string; run: () => Promise<void> | void }> = [];
  private readonly controller = new AbortController();
  private readonly log: Logger;
  private running: Promise<void> | undefined;

  constructor(private readonly opts: ShutdownOptions = {}) {
    this.log = opts.logger ?? createLogger("shutdown");
  }

  /** Aborted when shutdown begins. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  add(name: string, run: () => Promise<void> | void): this {
    this.steps.push({ name, run });
    return this;
  }

  /** The usual controller order; any part may be left out. */
  addRuntime(parts: { informers?: Stoppable[]; controllers?: Stoppable[]; elector?: Stoppable }): this {
    if (parts.informers?.length) this.add("informers", () => all(parts.informers!));
    if (parts.controllers?.length) this.add("work queues", () => all(parts.controllers!));
    if (parts.elector) this.add("leader lease", () => parts.elector!.stop());
    return this;
  }

  install(signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT"]): this {
    for (const s of signals) process.once(s, () => void this.run(s));
    return this;
  }

  /** Runs the steps once (later calls wait for the first), then exits. */
  run(reason = "requested"): Promise<void> {
    this.running ??= this.shutdown(reason);
    return this.running;
  }

  private async shutdown(reason: string): Promise<void> {
    const end = this.opts.exit ?? ((code: number) => process.exit(code));
    let exited = false;
    const exit = (code: number) => {
      if (exited) return;
      exited = true;
      end(code);
    };
    this.log.info("shutting down", { reason });
    this.controller.abort();
    const timer = setTimeout(() => {
      this.log.error("shutdown timed out, exiting", { timeoutMs: this.opts.timeoutMs ?? 30_000 });
      exit(1);
    }, this.opts.timeoutMs ?? 30_000);
    timer.unref();
    let failed = false;
    for (const step of this.steps) {
      try {
        await step.run();
      } catch (err) {
        failed = true;
        this.log.error("shutdown step failed", { step: step.name, error: String(err) });
      }
    }
    clearTimeout(timer);
    this.log.info("shutdown complete");
    exit(failed ? 1 : 0);
  }
}

async function all(parts: Stoppable[]): Promise<void> {
  await Promise.all(parts.map((p) => p.stop()));
}
