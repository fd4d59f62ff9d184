import { Serial } from "./serial.js";

/**
 * Runs `run` once, `delayMs` after the first of any number of schedule() calls, and never two at
 * once: a burst of watch events costs one pass, and a pass scheduled while one runs follows it.
 */
export class SerialDebounce {
  private timer: NodeJS.Timeout | undefined;
  private readonly series = new Serial();
  private stopped = false;

  constructor(
    private readonly delayMs: number,
    private readonly run: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  schedule(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.series.run(this.run).catch(this.onError);
    }, this.delayMs);
  }

  /**
   * One pass now, after the one running (if any), in the same series as scheduled passes; its
   * error is returned to the caller rather than reported.
   */
  runNow(): Promise<void> {
    return this.series.run(this.run);
  }

  /** No pass starts after this; resolves when the one running (if any) is over. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.series.idle();
  }
}
