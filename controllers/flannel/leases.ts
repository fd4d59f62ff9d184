import type { Etcd3, IKeyValue } from "etcd3";
import {
  API_VERSION,
  blockName,
  type IPAMBlock,
  type IPPool,
  underlayAddresses,
  vtepMAC,
  withPoolDefaults,
} from "../../api/index.js";
import {
  type ActualLease,
  AlreadyExistsError,
  adoptions,
  DEFAULT_FLANNEL_PREFIX,
  type DesiredLease,
  etcdWatch,
  FLANNEL_LEASE_TTL_SECONDS,
  flannelBackendType,
  type LeasePlan,
  leaseValue,
  mirrorable,
  networkConfigValue,
  parseSubnetKey,
  planLeases,
  prefixEnd,
  subnetKey,
} from "../../datastore/index.js";
import { createLogger, SerialDebounce, sleep } from "../../lib/index.js";
import { onEvents, type Runnable, resourceVersionChanged } from "../../runtime/index.js";
import type { ControllerContext } from "../context.js";

const log = createLogger("flannel-leases");

export interface FlannelLeasesOptions {
  /** Flannel's etcd prefix (default /coreos.com/network; env WEFT_FLANNEL_PREFIX). */
  prefix?: string;
  /** TTL of the etcd lease the subnet keys hang on (default 24 h, as flanneld). */
  ttlSeconds?: number;
  /** Keep-alive period, well before expiry (default 1 h). */
  renewEveryMs?: number;
  /** Full comparison of etcd with IPAM this often, whatever the events said (default 60 s). */
  resyncMs?: number;
}

/**
 * Mirrors Weft's NodeSubnet pool into Flannel's etcd layout so that Flannel tooling (and flanneld
 * itself, read-only) sees every node's subnet: `<prefix>/config` and one lease per node subnet on
 * an etcd lease of 24 h that this component keeps alive. At start, leases already in etcd are
 * adopted: their node gets exactly that subnet as its IPAM block (created before the IPAM node
 * reconciler runs, which is why this part must start first), and their bytes are never
 * overwritten. Lost or deleted keys are written again; a subnet that cannot be leased (held in
 * etcd for another PublicIP) is reported in status() and the log.
 *
 * One pool is mirrored: Flannel knows one network. With several IPv4 NodeSubnet pools the first
 * by name wins and the others are reported.
 */
export class FlannelLeases implements Runnable {
  readonly name = "flannel-leases";
  readonly prefix: string;
  private leaseId: string | undefined;
  private timers: NodeJS.Timeout[] = [];
  private stopWatch: (() => void) | undefined;
  private stopped = false;
  /** A pass lost a compare-and-swap to another writer: look again at once. */
  private raced = false;
  /** Events within 100 ms cost one pass; passes never overlap. */
  private readonly passes = new SerialDebounce(
    100,
    () => this.passUntilSettled(),
    () => undefined, // passUntilSettled reports its own failures
  );
  private lastStatus: LeasePlan["status"] = new Map();
  /** Leases taken over from flanneld: their bytes are kept while the key lives. */
  private readonly adopted = new Map<string, string>();
  /** For tests: reconcile passes, keys written, renewals. */
  readonly stats = { passes: 0, writes: 0, renewals: 0, regrants: 0, adopted: 0 };

  constructor(
    private readonly client: Etcd3,
    private readonly ctx: ControllerContext,
    private readonly opts: FlannelLeasesOptions = {},
  ) {
    this.prefix = (opts.prefix ?? DEFAULT_FLANNEL_PREFIX).replace(/\/+$/, "");
  }

  get configKey(): string {
    return `${this.prefix}/config`;
  }

  subnetKeyOf(cidr: string): string {
    return `${this.prefix}/subnets/${subnetKey(cidr)}`;
  }

  /** The etcd lease the keys hang on (hex is what etcdctl prints). */
  get lease(): string | undefined {
    return this.leaseId;
  }

  /** Per node: its subnet's state in etcd and why it is not leased when it is not. */
  status(): LeasePlan["status"] {
    return this.lastStatus;
  }

  async start(): Promise<void> {
    await this.grant();
    await this.adopt();
    const kick = () => this.schedule();
    const { pools, blocks, nodes } = this.ctx.informers;
    pools.on(onEvents(undefined, kick));
    blocks.on(onEvents(resourceVersionChanged, kick));
    nodes.on(onEvents(resourceVersionChanged, kick));
    this.watchEtcd();
    const renew = setInterval(() => void this.renew(), this.opts.renewEveryMs ?? 3600_000);
    const resync = setInterval(kick, this.opts.resyncMs ?? 60_000);
    renew.unref();
    resync.unref();
    this.timers.push(renew, resync);
    await this.reconcile();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.stopWatch?.();
    await this.passes.stop();
  }

  /** Runs a pass now (tests), or after the one in flight. */
  reconcile(): Promise<void> {
    return this.passes.runNow();
  }

  private schedule(): void {
    this.passes.schedule();
  }

  private async passUntilSettled(): Promise<void> {
    do {
      this.raced = false;
      await this.pass().catch((err: unknown) => {
        log.warn("flannel lease pass failed; retrying on the next event or resync", {
          error: String(err),
        });
      });
    } while (this.raced && !this.stopped);
  }

  private async grant(): Promise<void> {
    const res = await this.client.leaseClient.leaseGrant({
      TTL: this.opts.ttlSeconds ?? FLANNEL_LEASE_TTL_SECONDS,
    });
    this.leaseId = String(res.ID);
    log.info("etcd lease for flannel subnets granted", {
      lease: BigInt(this.leaseId).toString(16),
      ttl: res.TTL,
    });
  }

  /** Keeps the lease alive; a lease etcd no longer knows is granted anew and every key rewritten. */
  private async renew(): Promise<void> {
    if (this.stopped || !this.leaseId) return;
    try {
      const ttl = await this.keepAliveOnce(this.leaseId);
      if (ttl > 0) {
        this.stats.renewals++;
        return;
      }
      log.warn("flannel lease expired or was revoked; granting a new one", { lease: this.leaseId });
      this.stats.regrants++;
      await this.grant();
      await this.reconcile();
    } catch (err) {
      log.warn("could not renew the flannel lease; will retry", { error: String(err) });
      const t = setTimeout(() => void this.renew(), 5000);
      t.unref();
    }
  }

  private async keepAliveOnce(id: string): Promise<number> {
    const stream = await this.client.leaseClient.leaseKeepAlive();
    try {
      return await new Promise<number>((resolve, reject) => {
        stream.on("data", (res) => resolve(Number(res.TTL)));
        stream.on("error", reject);
        stream.on("end", () => reject(new Error("keep-alive stream ended")));
        stream.write({ ID: id });
      });
    } finally {
      stream.end();
      stream.cancel();
    }
  }

  /** A deleted or expired subnet key is noticed at once, not only at the next resync. */
  private watchEtcd(): void {
    if (this.stopped) return;
    this.stopWatch = etcdWatch<unknown>(
      this.client,
      { prefix: `${this.prefix}/`, fromRevision: undefined, decode: () => ({}), decodeDeleted: () => ({}) },
      (ev) => {
        if (ev.type === "DELETED") this.schedule();
        if (ev.type === "EXPIRED" || ev.type === "CLOSED") {
          this.schedule();
          void sleep(1000).then(() => this.watchEtcd());
        }
      },
    );
  }

  private mirroredPool(): IPPool | undefined {
    const pools = this.ctx.informers.pools
      .list()
      .filter(mirrorable)
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    if (pools.length > 1) {
      log.warn("Flannel knows one network: mirroring only the first NodeSubnet pool", {
        mirrored: pools[0]!.metadata.name,
        skipped: pools.slice(1).map((p) => p.metadata.name),
      });
    }
    return pools[0];
  }

  private nodeByIP(): Map<string, string> {
    const out = new Map<string, string>();
    for (const n of this.ctx.informers.nodes.list()) {
      const ip = underlayAddresses(n)[4];
      if (ip && n.metadata?.name) out.set(ip, n.metadata.name);
    }
    return out;
  }

  private async readLeases(): Promise<{ actual: ActualLease[]; config?: IKeyValue }> {
    const start = Buffer.from(`${this.prefix}/`);
    const res = await this.client.kv.range({ key: start, range_end: prefixEnd(start) });
    const actual: ActualLease[] = [];
    let config: IKeyValue | undefined;
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      if (key === this.configKey) config = kv;
      if (!key.startsWith(`${this.prefix}/subnets/`)) continue;
      const cidr = parseSubnetKey(key);
      if (cidr)
        actual.push({
          cidr,
          value: kv.value.toString(),
          lease: String(kv.lease),
          modRevision: kv.mod_revision,
        });
    }
    return { actual, config };
  }

  /**
   * Leases in etcd for known nodes become those nodes' IPAM blocks before the IPAM node reconciler
   * could give them another subnet; the block cache is waited for so its first plan sees them.
   */
  private async adopt(): Promise<void> {
    const ctx = this.ctx;
    const pool = this.mirroredPool();
    if (!pool) return;
    const { actual } = await this.readLeases();
    const blocks = ctx.informers.blocks.list().filter((b) => b.spec.pool === pool.metadata.name);
    const hasBlock = new Set(blocks.map((b) => b.spec.affinity));
    const taken = new Set(blocks.map((b) => b.spec.cidr));
    const created: string[] = [];
    for (const { node, cidr } of adoptions(actual, pool, this.nodeByIP())) {
      if (hasBlock.has(node) || taken.has(cidr)) continue;
      const block: IPAMBlock = {
        apiVersion: API_VERSION,
        kind: "IPAMBlock",
        metadata: { name: blockName(cidr) },
        spec: { cidr, pool: pool.metadata.name, affinity: node, allocations: [], sequence: 0 },
      };
      try {
        await ctx.store.create("IPAMBlock", block);
        created.push(block.metadata.name);
        this.stats.adopted++;
        log.info("adopted flannel lease: node keeps its subnet", { node, cidr });
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) throw err;
      }
    }
    const deadline = Date.now() + 30_000;
    while (created.some((n) => !ctx.informers.blocks.get(n)) && Date.now() < deadline) await sleep(20);
  }

  private noAddress: string[] = [];

  private desired(pool: IPPool): DesiredLease[] {
    const ctx = this.ctx;
    this.noAddress = [];
    const type = flannelBackendType(pool)!;
    const out: DesiredLease[] = [];
    for (const b of ctx.informers.blocks.list()) {
      if (b.spec.pool !== pool.metadata.name || !b.spec.affinity) continue;
      const node = ctx.informers.nodes.get(b.spec.affinity);
      // Flannel networks are IPv4, and so is PublicIP
      const ip = node ? underlayAddresses(node)[4] : undefined;
      if (!ip) {
        this.noAddress.push(b.spec.affinity);
        continue;
      }
      const value = leaseValue({
        publicIP: ip,
        backendType: type,
        vni: withPoolDefaults(pool).spec.vxlan.vni,
        vtepMAC: vtepMAC(b.spec.affinity),
      });
      out.push({ cidr: b.spec.cidr, node: b.spec.affinity, value, publicIP: ip });
    }
    return out;
  }

  private async pass(): Promise<void> {
    if (this.stopped || !this.leaseId) return;
    this.stats.passes++;
    const pool = this.mirroredPool();
    const { actual, config } = await this.readLeases();
    const lease = this.leaseId;
    const desired = pool ? this.desired(pool) : [];
    if (pool) {
      const want = networkConfigValue(pool);
      if (config?.value.toString() !== want)
        await this.put(this.configKey, want, "0", config?.mod_revision ?? "0");
    }
    const plan = planLeases(desired, actual, lease, this.adopted);
    for (const a of plan.actions) {
      const key = this.subnetKeyOf(a.cidr);
      const ok =
        a.kind === "create"
          ? await this.put(key, a.value, lease, "0")
          : a.kind === "delete"
            ? await this.remove(key, a.modRevision)
            : await this.put(key, a.value, lease, a.modRevision);
      if (!ok)
        this.raced = true; // raced with another writer: look again
      else if (a.kind === "adopt") this.adopted.set(a.cidr, a.value);
    }
    for (const [node, s] of plan.status) {
      const before = this.lastStatus.get(node);
      if (s.state === "Conflict" && (before?.state !== s.state || before.message !== s.message))
        log.warn("node's subnet cannot be leased for Flannel", { node, cidr: s.cidr, why: s.message });
    }
    for (const node of this.noAddress) {
      plan.status.set(node, {
        cidr: "",
        state: "Conflict",
        message:
          "the node has no IPv4 underlay address (InternalIP or weft.dev/underlay-ip) to put in PublicIP",
      });
    }
    this.lastStatus = plan.status;
  }

  /** Put guarded by the mod revision read ("0": only if absent). */
  private async put(key: string, value: string, lease: string, modRevision: string): Promise<boolean> {
    const k = Buffer.from(key);
    const compare =
      modRevision === "0"
        ? [{ key: k, target: "Create" as const, result: "Equal" as const, create_revision: 0 }]
        : [{ key: k, target: "Mod" as const, result: "Equal" as const, mod_revision: modRevision }];
    const res = await this.client.kv.txn({
      compare,
      success: [{ request_put: { key: k, value: Buffer.from(value), lease } }],
    });
    if (res.succeeded) this.stats.writes++;
    return res.succeeded;
  }

  private async remove(key: string, modRevision: string): Promise<boolean> {
    const k = Buffer.from(key);
    const res = await this.client.kv.txn({
      compare: [{ key: k, target: "Mod", result: "Equal", mod_revision: modRevision }],
      success: [{ request_delete_range: { key: k } }],
    });
    return res.succeeded;
  }
}
