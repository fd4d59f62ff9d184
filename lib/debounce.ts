import { GroupCommit } from "./groupcommit.js";

/**
 * Runs `run` once, `delayMs` after the first of any number of schedule() calls, and never two at
 * once: a burst of watch events costs one pass, and whatever is scheduled while a pass runs is
 * folded into one pass that follows it (a group commit of passes), so a slow pass never builds a
 * backlog of passes behind it.
 */
export class SerialDebounce {
  private timer: NodeJS.Timeout | undefined;
  private readonly passes: GroupCommit<void, void>;
  private stopped = false;

  constructor(
    private readonly delayMs: number,
    run: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {
    this.passes = new GroupCommit<void, void>(async (batch) => {
      if (this.stopped) {
        for (const w of batch) w.resolve();
        return;
      }
      await run();
      for (const w of batch) w.resolve();
    });
  }

  schedule(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.passes.submit().catch(this.onError);
    }, this.delayMs);
  }

  /**
   * One pass now, after the one running (if any), in the same series as scheduled passes; its
   * error is returned to the caller rather than reported.
   */
  runNow(): Promise<void> {
    return this.passes.submit();
  }

  /** No pass starts after this; resolves when the one running (if any) is over. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.passes.whenIdle();
  }
}
