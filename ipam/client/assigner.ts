import * as k8s from "@kubernetes/client-node";
import { Counter, register } from "prom-client";
import {
  API_VERSION,
  blockName,
  type IPAMBlock,
  type IPAMBlockSpec,
  type IPPool,
  type IPReservation,
} from "../../api/index.js";
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  type Store,
  StoreError,
} from "../../datastore/index.js";
import {
  createLogger,
  errorMessage,
  jitteredBackoff,
  KeyedGroupCommit,
  sleep,
  type Waiting,
} from "../../lib/index.js";
import {
  type Family,
  type FamilyName,
  familyFromName,
  familyOfValid,
  isFamilyName,
} from "../../net/index.js";
import { Informer, storeListWatch } from "../../runtime/index.js";
import {
  type AssignedAddress,
  type AssignRequest,
  assignAt,
  assignInBlock,
  checkPoolChoice,
  describeHolder,
  type FixedPlan,
  findHandle,
  IpamError,
  isIpamError,
  NO_RESERVATIONS,
  type Plan,
  type PoolChoice,
  planAssignment,
  planFixed,
  poolView,
  type ReleaseResult,
  type ReservedSet,
  releaseIfSequence,
  release as releaseInSpec,
  reservedSet,
} from "../index.js";
import { BlockCache } from "./blockcache.js";

const log = createLogger("ipam-assigner");

const assignFailures =
  (register.getSingleMetric("weft_ipam_assign_failures_total") as Counter<string>) ??
  new Counter({
    name: "weft_ipam_assign_failures_total",
    help: "Address assignments that failed, by node and IPAM error code (Exhausted, PoolNotUsable, AddressInUse, ...)",
    labelNames: ["node", "reason"],
  });

/** 4 / 6, or the configuration spelling. */
export type FamilyLike = Family | FamilyName;

export interface AssignArgs {
  node: string;
  /** Pod handle `<sandbox-id>.<interface>`, or a reserved handle such as `vtep.<node>`. */
  handle: string;
  namespace?: string;
  pod?: string;
  family?: FamilyLike;
  /** Several families: one address of each (dual-stack); all or nothing. */
  families?: FamilyLike[];
  /** Only these pools (e.g. the node's VXLAN pools for its VTEP). Default: every pool. */
  pools?: string[];
  /**
   * Pools the pod names, per family (weft.dev/ipv4pools, ipv6pools): every one must be usable by
   * the node, or the assignment fails naming it; addresses come only from these.
   */
  choice?: Partial<Record<Family, PoolChoice>>;
  /** Fixed addresses per family (weft.dev/ip-addresses), canonical text. */
  fixed?: Partial<Record<Family, string>>;
  /** Where the fixed addresses were asked for, for messages. */
  fixedSource?: string;
}

export interface Assigned extends AssignedAddress {
  family: Family;
  pool: string;
  /** Object name of the block. */
  block: string;
}

export interface Assignment {
  handle: string;
  /** One per family, in the order asked for. */
  ips: string[];
  addresses: Assigned[];
}

export interface ReleaseAddressArgs {
  handle: string;
  /** Block object name (or give `ip`). */
  block?: string;
  ip?: string;
  ordinal?: number;
  /** The sequence the allocation was seen with; a reused address has another one and stays. */
  sequence: number;
}

export interface AssignerOptions {
  store: Store;
  /** A shared block informer (the controller's); without it the assigner runs its own. */
  blocks?: Informer<IPAMBlock>;
  pools?: Informer<IPPool>;
  /** IPReservations (a shared informer); without it the assigner runs its own. */
  reservations?: Informer<IPReservation>;
  /** Labels of a node, for pools' nodeSelectors. Default: read the Node through kc, or none. */
  nodeLabels?: (
    node: string,
  ) => Record<string, string> | undefined | Promise<Record<string, string> | undefined>;
  kc?: k8s.KubeConfig;
  /** Only pools whose name passes (several allocators over disjoint pools; tests). */
  poolFilter?: (name: string) => boolean;
  /** Lost compare-and-swaps and claims per commit before giving up (default 64). */
  maxAttempts?: number;
  /**
   * The block informer holds only the assigning node's own blocks (an agent's, selected by
   * spec.affinity): when those are full, which CIDRs other nodes hold and what could be borrowed
   * is read from one list of every block, at that moment only, instead of being kept in memory.
   */
  ownBlocksOnly?: boolean;
}

/** One family's address for one handle, waiting for its node's next commit. */
interface Pending {
  req: AssignRequest;
  family: Family;
  pools: string[] | undefined;
  /** A fixed address: committed apart from the automatic ones (it names its block itself). */
  fixed?: { ip: string; source: string; choice?: PoolChoice };
}

type WaitingAssignment = Waiting<Pending, Assigned>;

/** A fixed address planned in a block, waiting for that block's write. */
interface FixedItem {
  p: Pending;
  plan: Exclude<FixedPlan, { kind: "error" | "held" }>;
}

/** A release on one block, waiting for the block's next write. */
type BlockOp = (spec: IPAMBlockSpec) => ReleaseResult;

/**
 * Requests that can share one commit: the same family from the same pools; fixed addresses of a
 * family together (each names its block, the commit groups them by block).
 */
const commitGroup = (p: Pending) =>
  p.fixed ? `${p.family}|fixed` : `${p.family}|${p.pools?.join(",") ?? ""}`;

/** A commit's waiting requests by handle: several requests for one handle share one address. */
class HandleWaiters {
  private readonly byHandle = new Map<string, WaitingAssignment[]>();

  constructor(waiting: WaitingAssignment[]) {
    this.add(waiting);
  }

  add(waiting: WaitingAssignment[]): void {
    for (const w of waiting)
      this.byHandle.set(w.item.req.handle, [...(this.byHandle.get(w.item.req.handle) ?? []), w]);
  }

  get size(): number {
    return this.byHandle.size;
  }

  /** One request per handle, for the plan. */
  requests(): AssignRequest[] {
    return [...this.byHandle.values()].map((ws) => ws[0]!.item.req);
  }

  handles(): string[] {
    return [...this.byHandle.keys()];
  }

  /** The request waiting under the handle (the first, when several share it). */
  first(handle: string): Pending | undefined {
    return this.byHandle.get(handle)?.[0]?.item;
  }

  resolve(handle: string, a: Assigned): void {
    for (const w of this.byHandle.get(handle) ?? []) w.resolve(a);
    this.byHandle.delete(handle);
  }

  reject(handle: string, err: unknown): void {
    for (const w of this.byHandle.get(handle) ?? []) w.reject(err);
    this.byHandle.delete(handle);
  }

  rejectAll(err: unknown): void {
    for (const ws of this.byHandle.values()) for (const w of ws) w.reject(err);
    this.byHandle.clear();
  }
}

function toFamily(f: FamilyLike): Family {
  if (f === 4 || f === 6) return f;
  if (isFamilyName(f)) return familyFromName(f);
  throw new IpamError(
    "InvalidAddress",
    `unknown address family ${JSON.stringify(f)} (use 4, 6, ipv4 or ipv6)`,
  );
}

/**
 * The assignment API the agent and the CNI path call. Every assignment is one compare-and-swap
 * write of one of the node's blocks (or one create, which is also the block's claim); requests
 * for one node that arrive while a write is in flight are committed together by the next write
 * (group commit), so a burst of N pods costs about N / block size writes, not 2N. The node's
 * blocks come from a watch-fed cache, so the common case reads nothing from the API.
 */
export class Assigner {
  readonly cache = new BlockCache();
  private readonly store: Store;
  private readonly ownInformers: Array<{ start(): void; stop(): Promise<void> }> = [];
  private readonly blocks: Informer<IPAMBlock>;
  private readonly pools: Informer<IPPool>;
  private readonly reservations: Informer<IPReservation>;
  private reservedCache: { list: readonly IPReservation[]; set: ReservedSet } | undefined;
  /**
   * Assignments per node and releases per block, group-committed: what queues while a write is in
   * flight goes into the next one, and the first waits a turn so that requests made together share it.
   */
  private readonly assignments = new KeyedGroupCommit<string, Pending, Assigned>(
    (node, batch, more) => this.commitNode(node, batch, more),
    { gather: true },
  );
  private readonly releases = new KeyedGroupCommit<string, BlockOp, AssignedAddress[]>(
    (name, batch) => this.commitReleases(name, batch),
    { gather: true },
  );
  private readonly labelCache = new Map<string, { at: number; labels: Record<string, string> }>();
  private readonly labelReads = new Map<string, Promise<Record<string, string>>>();
  private readonly coreApi: k8s.CoreV1Api | undefined;
  private readonly maxAttempts: number;
  private started = false;
  /** Commits made (writes that carried at least one new address); for tests and benchmarks. */
  readonly stats = { commits: 0, conflicts: 0, claims: 0, lostClaims: 0, addresses: 0 };

  constructor(private readonly opts: AssignerOptions) {
    this.store = opts.store;
    this.blocks = opts.blocks ?? new Informer(storeListWatch(opts.store, "IPAMBlock"));
    this.pools = opts.pools ?? new Informer(storeListWatch(opts.store, "IPPool"));
    this.reservations = opts.reservations ?? new Informer(storeListWatch(opts.store, "IPReservation"));
    if (!opts.blocks) this.ownInformers.push(this.blocks);
    if (!opts.pools) this.ownInformers.push(this.pools);
    if (!opts.reservations) this.ownInformers.push(this.reservations);
    this.coreApi = opts.kc && !opts.nodeLabels ? opts.kc.makeApiClient(k8s.CoreV1Api) : undefined;
    this.maxAttempts = opts.maxAttempts ?? 64;
    this.cache.attach(this.blocks);
  }

  /** Starts the informers it owns and waits until both caches are filled. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const i of this.ownInformers) i.start();
    await Promise.all([this.blocks.waitForSync(), this.pools.waitForSync(), this.reservations.waitForSync()]);
  }

  /** Every reserved range (IPReservations), parsed once per change of the informer's list. */
  reserved(): ReservedSet {
    const list = this.reservations.list();
    if (list.length === 0) return NO_RESERVATIONS;
    const c = this.reservedCache;
    if (c && c.list.length === list.length && c.list.every((r, i) => r === list[i])) return c.set;
    const set = reservedSet(list);
    this.reservedCache = { list, set };
    return set;
  }

  async stop(): Promise<void> {
    await Promise.all(this.ownInformers.map((i) => i.stop()));
  }

  /** Idempotent: a handle that holds an address of a family gets that address back. */
  async assign(args: AssignArgs): Promise<Assignment> {
    const fams = [...new Set((args.families ?? [args.family ?? 4]).map(toFamily))];
    const req: AssignRequest = { handle: args.handle };
    if (args.namespace !== undefined) req.namespace = args.namespace;
    if (args.pod !== undefined) req.pod = args.pod;
    try {
      await this.checkRequest(args, fams);
    } catch (err) {
      this.countFailure(args.node, err);
      throw err;
    }
    const results = await Promise.allSettled(
      fams.map((family) => {
        const ip = args.fixed?.[family];
        const choice = args.choice?.[family];
        // A fixed address answers only to pools the pod names itself (the pod wins over its namespace).
        const fixed = ip
          ? { ip, source: args.fixedSource ?? "fixed address", ...(choice?.onPod ? { choice } : {}) }
          : undefined;
        const pools = choice ? choice.names : args.pools;
        return this.assignments.submit(args.node, { req, family, pools, ...(fixed ? { fixed } : {}) });
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
      // Half a dual-stack pod is worse than none: give back what this call got.
      if (results.some((r) => r.status === "fulfilled" && !r.value.existing)) {
        await this.release(args.handle).catch((e: unknown) =>
          log.warn("could not undo a partial dual-stack assignment", {
            handle: args.handle,
            error: String(e),
          }),
        );
      }
      this.countFailure(args.node, failed.reason);
      throw failed.reason;
    }
    const addresses = results.map((r) => (r as PromiseFulfilledResult<Assigned>).value);
    return { handle: args.handle, ips: addresses.map((a) => a.ip), addresses };
  }

  private countFailure(node: string, err: unknown): void {
    assignFailures.inc({ node, reason: isIpamError(err) ? err.code : "Store" });
  }

  /**
   * What can be refused before anything is written: a fixed address of a family not asked for,
   * and a pool choice naming a pool the node may not use (none of it falls back to other pools).
   */
  private async checkRequest(args: AssignArgs, fams: Family[]): Promise<void> {
    for (const f of [4, 6] as const) {
      const ip = args.fixed?.[f];
      if (ip !== undefined && !fams.includes(f)) {
        throw new IpamError(
          "InvalidAnnotation",
          `${args.fixedSource ?? "fixed address"}: ${ip} is an IPv${f} address, but this network assigns ${fams.map((x) => `IPv${x}`).join(" and ")} only`,
          [],
          args.node,
        );
      }
    }
    const chosen = fams.filter((f) => args.choice?.[f] !== undefined && args.fixed?.[f] === undefined);
    if (chosen.length === 0) return;
    const node = { name: args.node, labels: await this.labelsOf(args.node) };
    for (const f of chosen)
      checkPoolChoice(args.choice![f]!, f, this.pools.list(), node, this.opts.poolFilter);
  }

  /** Frees every address of the handle. Idempotent: an unknown handle frees nothing. */
  async release(handle: string): Promise<AssignedAddress[]> {
    const filter = this.opts.poolFilter;
    const blocks = this.cache.withHandle(handle).filter((b) => !filter || filter(b.spec.pool));
    const out = await Promise.all(
      blocks.map((b) => this.releases.submit(b.metadata.name, (spec) => releaseInSpec(spec, handle))),
    );
    return out.flat();
  }

  /**
   * Frees one address only if `handle` still holds it at `sequence` (the garbage collector's and
   * `weftctl ipam release`'s guard): a stale release never frees an address handed out again.
   */
  async releaseAddress(args: ReleaseAddressArgs): Promise<AssignedAddress[]> {
    let name = args.block;
    let ordinal = args.ordinal;
    if (name === undefined || ordinal === undefined) {
      const found = this.cache
        .withHandle(args.handle)
        .flatMap((b) => findHandle([b.spec], args.handle).map((a) => ({ b, a })))
        .find(
          ({ a }) =>
            (args.ip === undefined || a.ip === args.ip) && (ordinal === undefined || a.ordinal === ordinal),
        );
      if (!found) return [];
      name = found.b.metadata.name;
      ordinal = found.a.ordinal;
    }
    const ord = ordinal;
    return this.releases.submit(name, (spec) => releaseIfSequence(spec, args.handle, ord, args.sequence));
  }

  /** Whether the pool is known to the assigner's cache (tests wait on it after creating a pool). */
  knowsPool(name: string): boolean {
    return this.pools.get(name) !== undefined;
  }

  /** Whether the cache has seen the pool marked for deletion (it then gives no new addresses). */
  seesPoolDeleting(name: string): boolean {
    return this.pools.get(name)?.metadata.deletionTimestamp !== undefined;
  }

  /** Addresses the handle holds, from the cache (async to fit the agent's AddressAssigner). */
  async lookup(handle: string): Promise<Assignment | undefined> {
    return this.holding(handle);
  }

  /** Addresses the handle holds, from the cache. */
  holding(handle: string): Assignment | undefined {
    const addresses = this.held(handle);
    if (addresses.length === 0) return undefined;
    return { handle, ips: addresses.map((a) => a.ip), addresses };
  }

  /** Handles holding addresses in the node's blocks (for CNI GC). */
  async handles(node: string): Promise<string[]> {
    const out = new Set<string>();
    for (const b of this.cache.ofNode(node)) for (const a of b.spec.allocations) out.add(a.handle);
    return [...out];
  }

  private held(handle: string): Assigned[] {
    const filter = this.opts.poolFilter;
    const blocks = this.cache.withHandle(handle).filter((b) => !filter || filter(b.spec.pool));
    return blocks.flatMap((b) =>
      findHandle([b.spec], handle).map((a) => ({
        ...a,
        family: familyOfValid(b.spec.cidr),
        pool: b.spec.pool,
        block: b.metadata.name,
      })),
    );
  }

  /**
   * One batch of a node's requests: each family (and pool choice) is committed on its own. A
   * commit that lost a compare-and-swap takes in what queued meanwhile: under contention batches
   * grow, so the winner of each round carries more addresses.
   */
  private async commitNode(
    node: string,
    batch: WaitingAssignment[],
    more: (accept: (p: Pending) => boolean) => WaitingAssignment[],
  ): Promise<void> {
    const groups = new Map<string, WaitingAssignment[]>();
    for (const w of batch) groups.set(commitGroup(w.item), [...(groups.get(commitGroup(w.item)) ?? []), w]);
    await Promise.all(
      [...groups].map(([key, g]) =>
        g[0]!.item.fixed
          ? this.commitFixed(node, g)
          : this.commit(node, g, () => more((p) => commitGroup(p) === key)),
      ),
    );
  }

  private async labelsOf(node: string): Promise<Record<string, string>> {
    if (this.opts.nodeLabels) return (await this.opts.nodeLabels(node)) ?? {};
    if (!this.coreApi) return {};
    const hit = this.labelCache.get(node);
    if (hit && Date.now() - hit.at < 10_000) return hit.labels;
    // Requests arriving together share one read, and so resume together: they still meet in one
    // commit (the group commit gathers what is queued within one turn of the event loop).
    let reading = this.labelReads.get(node);
    if (!reading) {
      const api = this.coreApi;
      reading = (async () => {
        let labels: Record<string, string> = {};
        try {
          labels = (await api.readNode({ name: node })).metadata?.labels ?? {};
        } catch (err) {
          if (!(err instanceof k8s.ApiException && err.code === 404)) throw err;
        }
        this.labelCache.set(node, { at: Date.now(), labels });
        return labels;
      })().finally(() => this.labelReads.delete(node));
      this.labelReads.set(node, reading);
    }
    return reading;
  }

  /** Commits one family's requests for a node: as few writes as the blocks allow. */
  private async commit(node: string, group: WaitingAssignment[], refill: () => WaitingAssignment[]) {
    const { family, pools } = group[0]!.item;
    const waiters = new HandleWaiters(group);
    const lostClaims = new Map<string, string>();
    let attempts = 0;
    try {
      for (;;) {
        for (const handle of waiters.handles()) {
          const have = this.held(handle).find((a) => a.family === family);
          if (have) waiters.resolve(handle, have);
        }
        if (waiters.size === 0) return;
        const plan = await this.plan(node, family, pools, waiters.size, lostClaims);
        const result = assignInBlock(plan.block, waiters.requests(), {
          ...(plan.reserved ? { reserved: plan.reserved } : {}),
          ...(plan.kind === "borrow" ? { borrower: node } : {}),
        });
        const name = blockName(plan.block.cidr);
        try {
          await this.writeAssignment(node, plan, name, result);
          for (const a of result.assigned)
            waiters.resolve(a.handle, { ...a, family, pool: plan.pool, block: name });
        } catch (err) {
          if (++attempts > this.maxAttempts) {
            throw new StoreError(
              `node ${node}: gave up assigning after ${attempts} attempts (last: ${errorMessage(err)})`,
              "IPAMBlock",
              name,
              { cause: err },
            );
          }
          await this.afterFailedWrite(err, node, name, attempts);
          if (err instanceof AlreadyExistsError) lostClaims.set(plan.block.cidr, "?");
          if (err instanceof ConflictError) waiters.add(refill());
        }
      }
    } catch (err) {
      waiters.rejectAll(err);
    }
  }

  /** Where `count` new addresses of a family go for the node, from the caches. */
  private async plan(
    node: string,
    family: Family,
    only: string[] | undefined,
    count: number,
    lostClaims: ReadonlyMap<string, string>,
  ): Promise<Exclude<Plan, { kind: "error" }>> {
    const view = poolView(this.pools.list(), this.opts.poolFilter);
    const pools = only ? view.usable.filter((p) => only.includes(p.name)) : view.usable;
    const labels = await this.labelsOf(node);
    const ownBlocks = this.cache.ofNode(node).map((b) => b.spec);
    const claimed =
      lostClaims.size > 0 ? new Map([...this.cache.claimed(), ...lostClaims]) : this.cache.claimed();
    const borrowable = pools.some((p) => p.spec.strictAffinity === false)
      ? [...this.cache.all()].map((b) => b.spec).filter((s) => s.affinity !== node)
      : undefined;
    const reserved = this.reserved();
    const input = {
      family,
      pools,
      node: { name: node, labels },
      ownBlocks,
      claimed,
      borrowable,
      count,
      ...(reserved.ranges.length > 0 ? { reserved } : {}),
    };
    let plan = planAssignment(input);
    if (this.opts.ownBlocksOnly && (plan.kind === "claim" || plan.kind === "error")) {
      // The node's blocks are full and this cache knows no other node's: read them all, once.
      const others = (await this.store.list("IPAMBlock")).items.filter((b) => b.spec.affinity !== node);
      const allClaimed = new Map(others.map((b) => [b.spec.cidr, b.spec.affinity]));
      for (const [cidr, owner] of claimed) allClaimed.set(cidr, owner);
      const canBorrow = pools.some((p) => p.spec.strictAffinity === false);
      plan = planAssignment({
        ...input,
        claimed: allClaimed,
        borrowable: canBorrow ? others.map((b) => b.spec) : undefined,
      });
      // A borrow writes another node's block: its current copy is what the compare-and-swap needs.
      if (plan.kind === "borrow") {
        const cidr = plan.block.cidr;
        const lent = others.find((b) => b.spec.cidr === cidr);
        if (lent) this.cache.upsert(lent);
      }
    }
    if (plan.kind === "error") throw plan.error;
    return plan;
  }

  /** One write: the create that claims a block with its first addresses, or a compare-and-swap update. */
  private async writeAssignment(
    node: string,
    plan: Exclude<Plan, { kind: "error" }>,
    name: string,
    result: ReturnType<typeof assignInBlock>,
  ): Promise<void> {
    let written: IPAMBlock;
    if (plan.kind === "claim") {
      written = await this.store.create("IPAMBlock", {
        apiVersion: API_VERSION,
        kind: "IPAMBlock",
        metadata: { name },
        spec: result.spec,
      });
      this.stats.claims++;
      log.info("claimed block", {
        node,
        pool: plan.pool,
        cidr: plan.cidr,
        addresses: result.assigned.length,
      });
    } else {
      const current = this.cache.get(name);
      if (!current) throw new NotFoundError("IPAMBlock", name);
      written = await this.store.update("IPAMBlock", { ...current, spec: result.spec });
    }
    this.stats.commits++;
    this.stats.addresses += result.assigned.filter((a) => !a.existing).length;
    this.cache.upsert(written);
  }

  /** Learns what a failed write means for the cache, and waits a little where others compete. */
  private async afterFailedWrite(err: unknown, node: string, name: string, attempts: number): Promise<void> {
    if (err instanceof AlreadyExistsError) {
      // Another node won the claim; learn its block and plan again.
      this.stats.lostClaims++;
      await this.refresh(name);
    } else if (err instanceof ConflictError) {
      this.stats.conflicts++;
      await this.refresh(name);
      await sleep(jitteredBackoff(Math.min(attempts, 6), 4, 250));
    } else if (err instanceof NotFoundError) {
      this.cache.remove(name);
    } else {
      // Unknown outcome (connection reset, timeout): the write may have landed. Read the block
      // back; the next round finds the handles there if it did, instead of assigning them a
      // second address.
      log.warn("block write failed, reading it back", { node, block: name, error: String(err) });
      await sleep(jitteredBackoff(Math.min(attempts, 6), 10, 1000));
      await this.refresh(name).catch(() => undefined);
    }
  }

  /**
   * Commits fixed addresses (weft.dev/ip-addresses) for a node: each names its block, so requests
   * are grouped by block and each group is one write (a create when the block is claimed).
   */
  private async commitFixed(node: string, group: WaitingAssignment[]): Promise<void> {
    const family = group[0]!.item.family;
    const waiters = new HandleWaiters(group);
    let attempts = 0;
    try {
      while (waiters.size > 0) {
        const labels = await this.labelsOf(node);
        const pools = this.pools.list();
        const byBlock = new Map<string, FixedItem[]>();
        for (const handle of waiters.handles()) {
          const p = waiters.first(handle)!;
          const fixed = p.fixed!;
          const have = this.held(handle).find((a) => a.family === family);
          if (have) {
            if (have.ip === fixed.ip) waiters.resolve(handle, have);
            else
              waiters.reject(
                handle,
                new IpamError(
                  "AddressUnavailable",
                  `${fixed.source}: sandbox ${handle} already holds ${have.ip}; delete the pod to give it ${fixed.ip}`,
                  [have.pool],
                  node,
                ),
              );
            continue;
          }
          const plan = planFixed({
            ip: fixed.ip,
            source: fixed.source,
            node: { name: node, labels },
            request: p.req,
            pools,
            ...(this.opts.poolFilter ? { poolFilter: this.opts.poolFilter } : {}),
            ...(fixed.choice ? { choice: fixed.choice } : {}),
            block: (cidr) => this.cache.get(blockName(cidr))?.spec,
            ownBlocks: this.cache.ofNode(node).map((b) => b.spec),
          });
          if (plan.kind === "error") {
            waiters.reject(handle, plan.error);
            continue;
          }
          if (plan.kind === "held") {
            const [a] = findHandle([plan.block], handle);
            const name = blockName(plan.block.cidr);
            if (a) waiters.resolve(handle, { ...a, family, pool: plan.pool, block: name });
            continue;
          }
          const name = blockName(plan.block.cidr);
          byBlock.set(name, [...(byBlock.get(name) ?? []), { p, plan }]);
        }
        if (byBlock.size === 0) continue;
        await Promise.all(
          [...byBlock].map(([name, items]) => this.writeFixed(node, family, name, items, waiters)),
        ).catch(async (err: unknown) => {
          if (++attempts > this.maxAttempts) throw err;
          await sleep(jitteredBackoff(Math.min(attempts, 6), 4, 250));
        });
      }
    } catch (err) {
      waiters.rejectAll(err);
    }
  }

  /** One write of one block for the fixed addresses planned in it; conflicts leave them waiting. */
  private async writeFixed(
    node: string,
    family: Family,
    name: string,
    items: FixedItem[],
    waiters: HandleWaiters,
  ): Promise<void> {
    const first = items[0]!.plan;
    let spec = first.block;
    const done: Array<{ handle: string; a: AssignedAddress }> = [];
    for (const { p, plan } of items) {
      const r = assignAt(spec, plan.ordinal, p.req, {
        ...(plan.kind === "assign" && plan.takeover ? { takeover: plan.takeover } : {}),
        ...(plan.kind === "assign" && plan.borrower ? { borrower: plan.borrower } : {}),
      });
      if (r.kind === "held") {
        const err = new IpamError(
          "AddressInUse",
          `${p.fixed!.source}: ${p.fixed!.ip} is in use by ${describeHolder(r.holder, spec.affinity)}`,
          [plan.pool],
          node,
        );
        waiters.reject(p.req.handle, err);
        continue;
      }
      spec = r.result.spec;
      done.push({ handle: p.req.handle, a: r.result.assigned[0]! });
    }
    if (done.length === 0) return;
    try {
      let written: IPAMBlock;
      if (first.kind === "claim") {
        written = await this.store.create("IPAMBlock", {
          apiVersion: API_VERSION,
          kind: "IPAMBlock",
          metadata: { name },
          spec,
        });
        this.stats.claims++;
        log.info("claimed block for a fixed address", { node, pool: first.pool, cidr: first.cidr });
      } else {
        const current = this.cache.get(name);
        if (!current) throw new NotFoundError("IPAMBlock", name);
        written = await this.store.update("IPAMBlock", { ...current, spec });
      }
      this.stats.commits++;
      this.stats.addresses += done.length;
      this.cache.upsert(written);
      for (const { handle, a } of done)
        waiters.resolve(handle, { ...a, family, pool: first.pool, block: name });
    } catch (err) {
      if (err instanceof AlreadyExistsError || err instanceof ConflictError) {
        // Someone wrote the block first: plan again from its current state.
        if (err instanceof ConflictError) this.stats.conflicts++;
        else this.stats.lostClaims++;
        await this.refresh(name);
        throw err;
      }
      if (err instanceof NotFoundError) {
        this.cache.remove(name);
        throw err;
      }
      log.warn("block write failed, reading it back", { node, block: name, error: String(err) });
      await this.refresh(name).catch(() => undefined);
      throw err;
    }
  }

  private async refresh(name: string): Promise<void> {
    const fresh = await this.store.get("IPAMBlock", name);
    if (fresh) this.cache.upsert(fresh);
    else this.cache.remove(name);
  }

  /** Releases on one block, batched like assignments: ops queued during a write share the next. */
  private async commitReleases(
    name: string,
    batch: Array<Waiting<BlockOp, AssignedAddress[]>>,
  ): Promise<void> {
    const released = await this.writeBlock(
      name,
      batch.map((w) => w.item),
    );
    for (const [i, w] of batch.entries()) w.resolve(released[i]!);
  }

  private async writeBlock(name: string, ops: BlockOp[]): Promise<AssignedAddress[][]> {
    let current = this.cache.get(name) ?? (await this.store.get("IPAMBlock", name));
    for (let attempt = 0; ; attempt++) {
      if (!current) return ops.map(() => []);
      let spec = current.spec;
      const released: AssignedAddress[][] = [];
      for (const op of ops) {
        const r = op(spec);
        spec = r.spec;
        released.push(r.released);
      }
      if (released.every((r) => r.length === 0)) return released;
      try {
        const written = await this.store.update("IPAMBlock", { ...current, spec });
        this.cache.upsert(written);
        return released;
      } catch (err) {
        if (err instanceof NotFoundError) {
          this.cache.remove(name);
          return ops.map(() => []);
        }
        if (!(err instanceof ConflictError) || attempt >= this.maxAttempts) throw err;
        this.stats.conflicts++;
        current = await this.store.get("IPAMBlock", name);
        if (current) this.cache.upsert(current);
        else this.cache.remove(name);
        await sleep(jitteredBackoff(Math.min(attempt, 6), 2, 200));
      }
    }
  }
}
