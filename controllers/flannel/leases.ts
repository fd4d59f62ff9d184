import type { Etcd3 } from "etcd3";
import {
  ANNOTATIONS,
  API_VERSION,
  type IPPool,
  type NodeNetworkStatus,
  underlayAddresses,
} from "../../api/index.js";
import {
  type ActualLease,
  DEFAULT_FLANNEL_PREFIX,
  etcdWatch,
  FLANNEL_LEASE_TTL_SECONDS,
  mirrorable,
  NotFoundError,
  parseSubnetKey,
  prefixEnd,
  subnetKey,
} from "../../datastore/index.js";
import { createLogger, errorMessage, SerialDebounce, sameValue, sleep } from "../../lib/index.js";
import {
  Informer,
  onEvents,
  type Runnable,
  resourceVersionChanged,
  storeListWatch,
} from "../../runtime/index.js";
import type { ControllerContext, FlannelProfile } from "../context.js";
import { type FlannelPlan, planFlannel, unavailableFor } from "./plan.js";

const log = createLogger("flannel-leases");

export interface FlannelLeasesOptions {
  /** Flannel's etcd prefix (default /coreos.com/network; env WEFT_FLANNEL_PREFIX). */
  prefix?: string;
  /**
   * Where Weft records which etcd lease its subnet keys hang on (a key on that lease, so it lives
   * exactly as long): how Weft knows its own keys after any restart. Default
   * /weft/flannel-owner<prefix>.
   */
  ownerKey?: string;
  /** TTL of the etcd lease the subnet keys hang on (default 24 h, as flanneld). */
  ttlSeconds?: number;
  /** Keep-alive period, well before expiry (default 1 h). */
  renewEveryMs?: number;
  /** Full comparison of etcd with IPAM this often, whatever the events said (default 60 s). */
  resyncMs?: number;
}

/**
 * Weft's side of a Flannel network in the same etcd (`<prefix>/config`, `<prefix>/subnets/`):
 * - the network config is read, never overwritten; the mirrored pool is checked against it and a
 *   mismatch is the pool's FlannelCompatible condition; with none, Weft writes one;
 * - nodes weft-agent runs get their lease from Weft, on one etcd lease of its own (24 h, kept
 *   alive, recorded under `ownerKey` so a restarted controller knows its keys, revoked when it
 *   holds no key any more);
 * - leases Weft did not write belong to nodes flanneld runs: never rewritten, moved or deleted,
 *   each becomes a RouteIntent (PublicIP, VtepMAC) while it lives, and the node keeps that subnet
 *   when it joins Weft's IPAM. When the node's weft-agent reports, the node is Weft's: its lease
 *   is taken over once, with the same subnet and MAC.
 * The pure decisions are in plan.ts; this class reads, watches and writes.
 *
 * One pool is mirrored: Flannel knows one network. With several IPv4 NodeSubnet pools the first
 * by name wins and the others are reported.
 */
export class FlannelLeases implements Runnable, FlannelProfile {
  readonly name = "flannel-leases";
  readonly prefix: string;
  readonly ownerKey: string;
  /** Weft's etcd lease (decimal id), when it holds one. */
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
  private agents: Informer<NodeNetworkStatus> | undefined;
  private current: FlannelPlan | undefined;
  private readonly listeners: Array<(c: { nodes: string[]; pools: string[] }) => void> = [];
  /** For tests: reconcile passes, keys written, renewals. */
  readonly stats = { passes: 0, writes: 0, renewals: 0, regrants: 0, takeovers: 0, revokes: 0 };

  constructor(
    private readonly client: Etcd3,
    private readonly ctx: ControllerContext,
    private readonly opts: FlannelLeasesOptions = {},
  ) {
    this.prefix = (opts.prefix ?? DEFAULT_FLANNEL_PREFIX).replace(/\/+$/, "");
    this.ownerKey = opts.ownerKey ?? `/weft/flannel-owner${this.prefix}`;
  }

  get configKey(): string {
    return `${this.prefix}/config`;
  }

  subnetKeyOf(cidr: string): string {
    return `${this.prefix}/subnets/${subnetKey(cidr)}`;
  }

  /** The etcd lease Weft's keys hang on (hex is what etcdctl prints), if it holds one. */
  get lease(): string | undefined {
    return this.leaseId;
  }

  /** The last pass's view of the network. */
  get plan(): FlannelPlan | undefined {
    return this.current;
  }

  /** Per node Weft leases for: its subnet's state in etcd, and why it is not leased when it is not. */
  status(): FlannelPlan["leases"]["status"] {
    return this.current?.leases.status ?? new Map();
  }

  async start(): Promise<void> {
    const { ctx } = this;
    this.agents = new Informer(storeListWatch(ctx.store, "NodeNetworkStatus"), { resyncMs: 5 * 60_000 });
    this.agents.start();
    await this.agents.waitForSync();
    await this.loadOwnership();
    const kick = () => this.schedule();
    const { pools, blocks, nodes, intents } = ctx.informers;
    pools.on(onEvents(undefined, kick));
    blocks.on(onEvents(resourceVersionChanged, kick));
    nodes.on(onEvents(resourceVersionChanged, kick));
    intents.on({ add: kick, delete: kick });
    // A node's agent appearing is the switch-over from flanneld; its status updates are not news.
    this.agents.on({ add: kick, delete: kick });
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
    await this.agents?.stop();
  }

  // FlannelProfile: what the other reconcilers ask, answered from the last pass.

  subnetFor(pool: string, node: string): { cidr: string; annotations: Record<string, string> } | undefined {
    const p = this.active(pool);
    const s = p && (p.subnetFor.get(node) ?? this.leaseOfNodeIP(p, node));
    if (!s) return undefined;
    return {
      cidr: s.cidr,
      annotations: {
        [ANNOTATIONS.flannelLease]: subnetKey(s.cidr),
        ...(s.vtepMAC ? { [ANNOTATIONS.vtepMAC]: s.vtepMAC } : {}),
      },
    };
  }

  unavailable(pool: string, node: string): { has(cidr: string): boolean } | undefined {
    const p = this.active(pool);
    const u = p && unavailableFor(p, node);
    if (!p || !u) return undefined;
    const own = this.leaseOfNodeIP(p, node)?.cidr;
    return { has: (cidr) => cidr !== own && u.has(cidr) };
  }

  /**
   * A lease of someone else's naming this node's address that the last pass could not match to
   * a Node (the Node registered after it, as a kubelet does next to a running flanneld): the
   * node's subnet all the same, so a join never races the next pass into a second subnet.
   */
  private leaseOfNodeIP(p: FlannelPlan, node: string): { cidr: string; vtepMAC?: string } | undefined {
    const n = this.ctx.informers.nodes.get(node);
    const ip = n && underlayAddresses(n)[4];
    if (!ip) return undefined;
    const r = p.rows.find(
      (x) => x.publicIP === ip && x.node === undefined && x.owner !== "weft" && !x.problem,
    );
    return r && { cidr: r.cidr, ...(r.vtepMAC ? { vtepMAC: r.vtepMAC } : {}) };
  }

  reservesFirstAddress(pool: string): boolean {
    return this.active(pool) !== undefined;
  }

  vxlan(pool: IPPool): { vni: number; port: number; device: string } | undefined {
    return this.active(pool.metadata.name)?.vxlan;
  }

  ownsIntent(name: string): boolean {
    const p = this.current;
    return p !== undefined && (p.flanneldNodes.has(name) || p.intents.has(name));
  }

  poolConditions(pool: string): ReturnType<FlannelProfile["poolConditions"]> {
    const p = this.current;
    if (!p?.pool || p.pool.metadata.name !== pool) {
      if (p?.skipped.includes(pool))
        return [
          {
            type: "FlannelCompatible",
            status: "False",
            reason: "NotMirrored",
            message: `Flannel knows one network: pool ${p.pool?.metadata.name} is the one mirrored under ${this.prefix}`,
          },
        ];
      return [];
    }
    if (p.configError)
      return [
        {
          type: "FlannelCompatible",
          status: "False",
          reason: "ConfigUnreadable",
          message: `${this.configKey}: ${p.configError}; nothing is mirrored`,
        },
      ];
    if (p.mismatches.length > 0)
      return [
        {
          type: "FlannelCompatible",
          status: "False",
          reason: "ConfigMismatch",
          message: `${p.mismatches.map((m) => m.message).join("; ")} (${this.configKey} is never overwritten); nothing is mirrored`,
        },
      ];
    return [
      {
        type: "FlannelCompatible",
        status: "True",
        reason: "ConfigMatches",
        message: `pool agrees with ${this.configKey}; ${p.rows.filter((r) => r.runBy === "flanneld").length} subnet(s) of nodes flanneld runs`,
      },
    ];
  }

  onChange(listener: (change: { nodes: string[]; pools: string[] }) => void): void {
    this.listeners.push(listener);
  }

  private active(pool: string): FlannelPlan | undefined {
    const p = this.current;
    return p?.active && p.pool?.metadata.name === pool ? p : undefined;
  }

  /** Runs a pass now (tests), or after the one in flight. */
  reconcile(): Promise<void> {
    return this.passes.runNow();
  }

  refresh(): Promise<void> {
    return this.passes.runNow();
  }

  private schedule(): void {
    this.passes.schedule();
  }

  private async passUntilSettled(): Promise<void> {
    do {
      this.raced = false;
      await this.pass().catch((err: unknown) => {
        log.warn("flannel pass failed; retrying on the next event or resync", { error: errorMessage(err) });
      });
    } while (this.raced && !this.stopped);
  }

  /** The etcd lease recorded by an earlier run, if it still lives: its keys are Weft's. */
  private async loadOwnership(): Promise<void> {
    const res = await this.client.kv.range({ key: Buffer.from(this.ownerKey) });
    const kv = res.kvs[0];
    if (!kv) return;
    const id = kv.lease;
    const ttl = await this.client.leaseClient.leaseTimeToLive({ ID: id });
    if (Number(ttl.TTL) > 0) {
      this.leaseId = String(id);
      log.info("holding the etcd lease of an earlier run", { lease: hex(this.leaseId), ttl: ttl.TTL });
    }
  }

  /** A new etcd lease for Weft's keys, recorded; another replica's record wins a race. */
  private async grant(): Promise<string> {
    const res = await this.client.leaseClient.leaseGrant({
      TTL: this.opts.ttlSeconds ?? FLANNEL_LEASE_TTL_SECONDS,
    });
    const id = String(res.ID);
    const key = Buffer.from(this.ownerKey);
    const txn = await this.client.kv.txn({
      compare: [{ key, target: "Create", result: "Equal", create_revision: 0 }],
      success: [{ request_put: { key, value: Buffer.from(JSON.stringify({ lease: hex(id) })), lease: id } }],
      failure: [{ request_range: { key } }],
    });
    if (!txn.succeeded) {
      await this.client.leaseClient.leaseRevoke({ ID: id });
      const held = txn.responses[0]?.response_range?.kvs[0];
      if (!held) throw new Error(`${this.ownerKey} vanished while granting a lease; retrying`);
      this.leaseId = String(held.lease);
      return this.leaseId;
    }
    this.leaseId = id;
    log.info("etcd lease for Weft's flannel subnets granted", { lease: hex(id), ttl: res.TTL });
    return id;
  }

  /** Keeps the lease alive; one etcd no longer knows is forgotten (its keys went with it). */
  private async renew(): Promise<void> {
    const id = this.leaseId;
    if (this.stopped || !id) return;
    try {
      const ttl = await this.keepAliveOnce(id);
      if (ttl > 0) {
        this.stats.renewals++;
        return;
      }
      log.warn("Weft's flannel lease expired or was revoked; its keys are written anew", { lease: hex(id) });
      this.stats.regrants++;
      if (this.leaseId === id) this.leaseId = undefined;
      await this.reconcile();
    } catch (err) {
      log.warn("could not renew the flannel lease; will retry", { error: errorMessage(err) });
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

  /** Any change under the prefix (a lease taken, renewed, expired) is looked at at once. */
  private watchEtcd(): void {
    if (this.stopped) return;
    this.stopWatch = etcdWatch<unknown>(
      this.client,
      { prefix: `${this.prefix}/`, fromRevision: undefined, decode: () => ({}), decodeDeleted: () => ({}) },
      (ev) => {
        if (ev.type === "ADDED" || ev.type === "MODIFIED" || ev.type === "DELETED") this.schedule();
        if (ev.type === "EXPIRED" || ev.type === "CLOSED") {
          this.schedule();
          void sleep(1000).then(() => this.watchEtcd());
        }
      },
    );
  }

  private async readEtcd(): Promise<{ leases: ActualLease[]; config?: string; configRevision: string }> {
    const start = Buffer.from(`${this.prefix}/`);
    const res = await this.client.kv.range({ key: start, range_end: prefixEnd(start) });
    const leases: ActualLease[] = [];
    let config: string | undefined;
    let configRevision = "0";
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      if (key === this.configKey) {
        config = kv.value.toString();
        configRevision = kv.mod_revision;
      }
      if (!key.startsWith(`${this.prefix}/subnets/`)) continue;
      const cidr = parseSubnetKey(key);
      if (cidr)
        leases.push({
          cidr,
          value: kv.value.toString(),
          lease: String(kv.lease),
          modRevision: kv.mod_revision,
        });
    }
    return { leases, ...(config !== undefined ? { config } : {}), configRevision };
  }

  private async pass(): Promise<void> {
    const ctx = this.ctx;
    if (this.stopped) return;
    this.stats.passes++;
    const { leases, config } = await this.readEtcd();
    const nodes = ctx.informers.nodes.list().flatMap((n) => {
      const name = n.metadata?.name;
      if (!name) return [];
      const ip = underlayAddresses(n)[4];
      return [{ name, labels: n.metadata?.labels ?? {}, ...(ip ? { ip } : {}) }];
    });
    const plan = planFlannel({
      pools: ctx.informers.pools.list().filter(mirrorable),
      ...(config !== undefined ? { config } : {}),
      leases,
      ours: new Set(this.leaseId ? [this.leaseId] : []),
      nodes,
      blocks: ctx.informers.blocks.list(),
      agents: new Set(this.agents?.list().map((s) => s.metadata.name) ?? []),
    });
    const before = this.current;
    this.current = plan;
    this.report(before, plan);
    this.notify(before, plan);
    if (!plan.active) {
      // Nothing is mirrored (no pool, or a config it disagrees with): Weft's keys go.
      for (const l of leases.filter((x) => x.lease === this.leaseId))
        if (!(await this.remove(this.subnetKeyOf(l.cidr), l.modRevision))) this.raced = true;
      await this.writeIntents(plan);
      await this.revokeIfUnused();
      return;
    }
    if (plan.writeConfig !== undefined) {
      // Only where there is none: a config someone wrote meanwhile is read on the next pass.
      if (!(await this.put(this.configKey, plan.writeConfig, "0", "0"))) this.raced = true;
      else
        log.info("wrote Flannel's network config (there was none)", {
          key: this.configKey,
          value: plan.writeConfig,
        });
    }
    for (const a of plan.leases.actions) {
      const key = this.subnetKeyOf(a.cidr);
      let ok: boolean;
      if (a.kind === "delete") ok = await this.remove(key, a.modRevision);
      else {
        const lease = this.leaseId ?? (await this.grant());
        ok = await this.put(key, a.value, lease, a.kind === "create" ? "0" : a.modRevision);
        if (ok && a.kind === "takeover") {
          this.stats.takeovers++;
          log.info("node's weft-agent took over from flanneld: its lease is Weft's now", {
            node: a.node,
            cidr: a.cidr,
          });
        }
      }
      if (!ok) this.raced = true; // raced with another writer: look again
    }
    await this.writeIntents(plan);
    await this.markBlocks(plan);
    await this.revokeIfUnused();
  }

  /** Weft holds no subnet key any more: its etcd lease goes (with the ownership record on it). */
  private async revokeIfUnused(): Promise<void> {
    const id = this.leaseId;
    if (!id) return;
    const held = await this.client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
    if (held.keys.some((k) => k.toString() !== this.ownerKey)) return;
    await this.client.leaseClient.leaseRevoke({ ID: id }).catch(() => undefined);
    if (this.leaseId === id) this.leaseId = undefined;
    this.stats.revokes++;
    log.info("Weft holds no flannel subnet any more: its etcd lease is revoked", { lease: hex(id) });
  }

  /** RouteIntents of the leases of nodes flanneld runs; those whose lease is gone are deleted. */
  private async writeIntents(plan: FlannelPlan): Promise<void> {
    const ctx = this.ctx;
    for (const want of plan.intents.values()) {
      const have = ctx.informers.intents.get(want.name);
      if (have && sameValue(have.spec, want.spec) && sameValue(have.metadata.labels ?? {}, want.labels))
        continue;
      await ctx.store.apply("RouteIntent", {
        apiVersion: API_VERSION,
        kind: "RouteIntent",
        metadata: { name: want.name, labels: want.labels },
        spec: want.spec,
      });
      this.stats.writes++;
      log.info(have ? "updated RouteIntent from a flanneld lease" : "RouteIntent from a flanneld lease", {
        intent: want.name,
        lease: want.lease,
        publicIP: want.spec.underlayIP,
        ...(want.spec.vtep ? { vtepMAC: want.spec.vtep.mac } : {}),
      });
    }
    for (const i of ctx.informers.intents.list()) {
      const name = i.metadata.name;
      if (i.metadata.labels?.[ANNOTATIONS.flannelLease] === undefined) continue;
      // A node weft-agent runs now has its intent from the RouteIntent reconciler (same name).
      if (plan.intents.has(name) || plan.weftNodes.has(name)) continue;
      try {
        await ctx.store.delete("RouteIntent", name, { uid: i.metadata.uid });
        log.info("the flanneld lease is gone (expired or deleted): its RouteIntent too", {
          intent: name,
          lease: i.metadata.labels[ANNOTATIONS.flannelLease],
        });
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
  }

  /** Blocks of nodes flanneld runs record its lease and VTEP MAC (kept at the switch-over). */
  private async markBlocks(plan: FlannelPlan): Promise<void> {
    const ctx = this.ctx;
    for (const m of plan.blockMarks) {
      await ctx.store
        .mutate("IPAMBlock", m.block, (b) => ({
          ...b,
          metadata: { ...b.metadata, annotations: { ...b.metadata.annotations, ...m.annotations } },
        }))
        .catch((err: unknown) => {
          if (!(err instanceof NotFoundError)) throw err;
        });
      log.info("block of a node flanneld runs records its lease", { block: m.block, ...m.annotations });
    }
  }

  private report(before: FlannelPlan | undefined, plan: FlannelPlan): void {
    const key = (p: FlannelPlan | undefined) =>
      JSON.stringify([p?.configError, p?.mismatches, p?.skipped, p?.rows.map((r) => [r.cidr, r.problem])]);
    if (key(before) === key(plan)) return;
    if (plan.skipped.length)
      log.warn("Flannel knows one network: mirroring only the first NodeSubnet pool", {
        mirrored: plan.pool?.metadata.name,
        skipped: plan.skipped,
      });
    if (plan.configError)
      log.warn("Flannel's network config cannot be read; nothing is mirrored", { error: plan.configError });
    for (const m of plan.mismatches)
      log.warn("pool disagrees with Flannel's network config; nothing is mirrored", {
        field: m.field,
        why: m.message,
      });
    for (const r of plan.rows)
      if (r.problem)
        log.warn("flannel lease not used", { lease: r.key, publicIP: r.publicIP, why: r.problem });
    for (const [node, s] of plan.leases.status)
      if (s.state === "Conflict")
        log.warn("node's subnet cannot be leased for Flannel", { node, cidr: s.cidr, why: s.message });
  }

  /** Tells the other reconcilers which nodes and pools to look at again. */
  private notify(before: FlannelPlan | undefined, plan: FlannelPlan): void {
    const nodes = new Set<string>();
    const names = new Set([
      ...(before?.subnetFor.keys() ?? []),
      ...plan.subnetFor.keys(),
      ...(before?.flanneldNodes ?? []),
      ...plan.flanneldNodes,
      ...(before?.intents.keys() ?? []),
      ...plan.intents.keys(),
    ]);
    for (const n of names) {
      const was = before && {
        s: before.subnetFor.get(n),
        f: before.flanneldNodes.has(n),
        i: before.intents.has(n),
      };
      const is = { s: plan.subnetFor.get(n), f: plan.flanneldNodes.has(n), i: plan.intents.has(n) };
      if (!sameValue(was, is)) nodes.add(n);
    }
    const pools = new Set<string>();
    const condKey = (p: FlannelPlan | undefined) =>
      JSON.stringify([
        p?.active,
        p?.configError,
        p?.mismatches,
        p?.rows.filter((r) => r.runBy === "flanneld").length,
      ]);
    const vxKey = (p: FlannelPlan | undefined) =>
      JSON.stringify([p?.pool?.metadata.name, p?.active, p?.vxlan, p?.config]);
    for (const p of [before?.pool, plan.pool, ...plan.skipped.map((name) => ({ metadata: { name } }))])
      if (p && condKey(before) !== condKey(plan)) pools.add(p.metadata.name);
    // Settings every node's intent carries: all of them are looked at again.
    if (vxKey(before) !== vxKey(plan))
      for (const n of this.ctx.informers.nodes.list()) nodes.add(n.metadata?.name ?? "");
    nodes.delete("");
    if (nodes.size === 0 && pools.size === 0) return;
    const change = { nodes: [...nodes], pools: [...pools] };
    for (const l of this.listeners) l(change);
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

function hex(id: string): string {
  return BigInt(id).toString(16);
}
