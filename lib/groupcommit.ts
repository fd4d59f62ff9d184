import { Serial } from "./serial.js";

/** One request waiting in a group commit; the commit gives it its outcome. */
export interface Waiting<I, R> {
  readonly item: I;
  resolve(result: R): void;
  reject(err: unknown): void;
}

/**
 * Commits one batch. It settles each request of `batch` (and of whatever it takes with `more`); a
 * throw rejects every request not settled yet. `more` takes requests that arrived after the batch
 * closed (those that `accept` passes): a commit that has to try again can carry them too.
 */
export type Commit<I, R> = (
  batch: Array<Waiting<I, R>>,
  more: (accept?: (item: I) => boolean) => Array<Waiting<I, R>>,
) => Promise<void>;

export interface GroupCommitOptions {
  /**
   * Batches run as tasks of this Serial, in line with its other tasks (default: a Serial of their
   * own). A batch stays open until its task starts, so requests made while it waits join it.
   */
  serial?: Serial;
  /**
   * After an idle spell, wait one turn of the event loop before the first batch closes, so that
   * requests made in the same turn (a burst of callbacks) share it.
   */
  gather?: boolean;
  /** Called when no batch is open or running any more. */
  onIdle?: () => void;
}

const immediate = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Group commit: requests that arrive while a commit runs (or waits its turn) are committed
 * together by the next one, so a burst of N requests costs a few commits, not N. Commits never
 * overlap; each caller gets the outcome of the commit that carried its request.
 */
export class GroupCommit<I, R> {
  /** The batch whose commit has not started yet; requests join it. */
  private open: Array<Waiting<I, R>> | undefined;
  /** Batches queued or running. */
  private scheduled = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly serial: Serial;

  constructor(
    private readonly commit: Commit<I, R>,
    private readonly opts: GroupCommitOptions = {},
  ) {
    this.serial = opts.serial ?? new Serial();
  }

  /** No batch open, queued or running. */
  get idle(): boolean {
    return this.scheduled === 0;
  }

  /** Resolves once no batch is open, queued or running. */
  whenIdle(): Promise<void> {
    if (this.scheduled === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const waiting = settleOnce(item, resolve, reject);
      if (this.open) {
        this.open.push(waiting);
        return;
      }
      const batch = [waiting];
      this.open = batch;
      const gather = this.opts.gather === true && this.scheduled === 0;
      this.scheduled++;
      void this.serial.run(async () => {
        try {
          if (gather) await immediate();
          if (this.open === batch) this.open = undefined;
          await this.run(batch);
        } finally {
          this.scheduled--;
          if (this.scheduled === 0) {
            for (const w of this.idleWaiters.splice(0)) w();
            this.opts.onIdle?.();
          }
        }
      });
    });
  }

  private async run(batch: Array<Waiting<I, R>>): Promise<void> {
    if (batch.length === 0) return; // every request was taken by the commit before
    const carried = [...batch];
    const more = (accept: (item: I) => boolean = () => true) => {
      const open = this.open;
      if (!open) return [];
      const taken = open.filter((w) => accept(w.item));
      if (taken.length === 0) return [];
      const left = open.filter((w) => !accept(w.item));
      open.splice(0, open.length, ...left);
      carried.push(...taken);
      return taken;
    };
    try {
      await this.commit(batch, more);
    } catch (err) {
      for (const w of carried) w.reject(err);
      return;
    }
    const orphan = new Error("group commit ended without an outcome for this request");
    for (const w of carried) w.reject(orphan); // a no-op for every request the commit settled
  }
}

function settleOnce<I, R>(item: I, resolve: (r: R) => void, reject: (err: unknown) => void): Waiting<I, R> {
  let settled = false;
  return {
    item,
    resolve(r) {
      if (settled) return;
      settled = true;
      resolve(r);
    },
    reject(err) {
      if (settled) return;
      settled = true;
      reject(err);
    },
  };
}

/**
 * A group commit per key (a node's assignments, a block's releases): keys commit independently
 * and concurrently, and a key with nothing open or running holds no memory.
 */
export class KeyedGroupCommit<K, I, R> {
  private readonly groups = new Map<K, GroupCommit<I, R>>();

  constructor(
    private readonly commit: (key: K, ...args: Parameters<Commit<I, R>>) => Promise<void>,
    private readonly opts: Pick<GroupCommitOptions, "gather"> = {},
  ) {}

  submit(key: K, item: I): Promise<R> {
    let group = this.groups.get(key);
    if (!group) {
      const g: GroupCommit<I, R> = new GroupCommit<I, R>((batch, more) => this.commit(key, batch, more), {
        ...this.opts,
        onIdle: () => {
          if (this.groups.get(key) === g) this.groups.delete(key);
        },
      });
      group = g;
      this.groups.set(key, g);
    }
    return group.submit(item);
  }

  /** Keys with a batch open or running. */
  get size(): number {
    return this.groups.size;
  }
}
