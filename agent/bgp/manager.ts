import { readFileSync } from "node:fs";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import {
  BGP_CONFIGURATION_NAME,
  type BGPConfiguration,
  type BGPPeer,
  type BGPSessionStatus,
  type IPAMBlock,
  type IPPool,
  type NodeNetworkStatusStatus,
  type SecretKeyRef,
} from "../../api/index.js";
import {
  announcements,
  type BfdSession,
  type BirdProtocol,
  bgpPools,
  bgpStatus,
  computeTopology,
  type EndpointSliceLike,
  gracefulRestartTurn,
  localLoadBalancerIngress,
  type NodeTopology,
  type RenderedProtocol,
  redact,
  referencedSecrets,
  renderBirdConfig,
  roleChanges,
  type ServiceLike,
  secretRefKey,
  sessionStatuses,
  topologyInputFrom,
} from "../../bgp/index.js";
import type { Store } from "../../datastore/index.js";
import { borrowedAddresses } from "../../ipam/index.js";
import { canonicalJson, errorMessage, type Logger, ownNamespace, SerialDebounce } from "../../lib/index.js";
import {
  and,
  annotationsChanged,
  changed,
  type Informer,
  type InformerCache,
  labelsChanged,
  matching,
  NamedSecrets,
  onEvents,
  or,
  type Runnable,
  resourceVersionChanged,
} from "../../runtime/index.js";
import { BirdProcess } from "./bird-process.js";

/**
 * The agent's BGP side (I/O): once BGP is in use (a BGP pool or a BGPPeer exists) it watches
 * BGPConfiguration, BGPPeers and Nodes, computes this node's sessions, watches the Secrets those
 * sessions reference (only those, each by name: a rotated password is applied within a watch
 * event), renders bird.conf and applies it through BirdProcess, and reads session and BFD state
 * back for NodeNetworkStatus (see decorate()). When this node announces LoadBalancer addresses it
 * also watches Services and EndpointSlices (for externalTrafficPolicy Local).
 *
 * A change that BIRD could only make by restarting sessions (this node becoming or ceasing to be a
 * reflector, BFD turned on) is applied by a graceful restart of BIRD, so no peer drops its routes.
 *
 * BIRD runs as a child of the agent, so it lives in the agent's network namespace.
 * Passwords are held only in memory and in bird.conf (mode 0600); every message that leaves this
 * module goes through redact().
 */

export interface BgpManagerOptions {
  node: string;
  store: Store;
  kc: k8s.KubeConfig;
  /**
   * The agent's informers (pools, blocks, the BGP kinds; Nodes once BGP is in use; Services and
   * EndpointSlices once this node announces LoadBalancer addresses). Its node selector says which
   * nodes take part: one cluster network among several.
   */
  cache: InformerCache;
  logger: Logger;
  /** The agent's run directory; BIRD's files go to `<runDir>/bird`. */
  runDir: string;
  /** Namespace of Secret references without one (default: the namespace Weft runs in, ownNamespace()). */
  secretNamespace?: string;
  /** Whether the kernel has TCP MD5 (default: detected from /proc/kallsyms). */
  md5Supported?: boolean;
  birdPath?: string;
  birdcPath?: string;
  /** How often BIRD's session state is read (default 2000 ms). */
  statusIntervalMs?: number;
  /** Length of one turn of graceful restarts across the cluster (default 3000 ms; see gracefulRestartTurn). */
  gracefulRestartTurnMs?: number;
  /** Called when what decorate() returns changed. */
  onStatusChange?: () => void;
}

/** TCP MD5 (RFC 2385) is a kernel build option; its code shows up in kallsyms when present. */
export function kernelHasTcpMd5(): boolean {
  try {
    return /\btcp_md5_do_add\b/.test(readFileSync("/proc/kallsyms", "utf8"));
  } catch {
    return true;
  }
}

export class BgpManager implements Runnable {
  readonly name = "bgp";
  readonly configs: Informer<BGPConfiguration>;
  readonly peers: Informer<BGPPeer>;
  private readonly pools: Informer<IPPool>;
  private readonly blocks: Informer<IPAMBlock>;
  private nodes: Informer<k8s.V1Node> | undefined;
  private services: Informer<k8s.V1Service> | undefined;
  private slices: Informer<EndpointSliceLike> | undefined;
  readonly bird: BirdProcess;
  private readonly md5: boolean;
  private readonly secrets: NamedSecrets;
  /** Secrets a session needs that do not exist (or lack the key): `namespace/name (key k)`. */
  private missingSecrets: string[] = [];
  private passwordValues: string[] = [];
  private active = false;
  private stopped = false;
  private readonly syncs = new SerialDebounce(
    50,
    () => this.sync(),
    (err) => this.opts.logger.error("BGP sync failed", { error: this.clean(errorMessage(err)) }),
  );
  private rendered: RenderedProtocol[] = [];
  private problems: string[] = [];
  private applyError: string | undefined;
  private passwordSessions = 0;
  private sessions: BGPSessionStatus[] | undefined;
  private lastFingerprint = "";
  /** Set once this node has something to say about BGP; decorate() leaves status alone before. */
  private inUse = false;

  constructor(private readonly opts: BgpManagerOptions) {
    this.configs = opts.cache.kind("BGPConfiguration");
    this.peers = opts.cache.kind("BGPPeer");
    this.pools = opts.cache.kind("IPPool");
    this.blocks = opts.cache.kind("IPAMBlock");
    this.secrets = new NamedSecrets(
      opts.kc,
      () => this.schedule(),
      opts.logger.child({ component: "secrets" }),
    );
    this.md5 = opts.md5Supported ?? kernelHasTcpMd5();
    this.bird = new BirdProcess({
      dir: join(opts.runDir, "bird"),
      logger: opts.logger.child({ component: `bird/${opts.node}` }),
      statusIntervalMs: opts.statusIntervalMs ?? 2000,
      onStatus: (p, bfd) => this.onBirdStatus(p, bfd),
      ...(opts.birdPath ? { birdPath: opts.birdPath } : {}),
      ...(opts.birdcPath ? { birdcPath: opts.birdcPath } : {}),
    });
    const schedule = () => this.schedule();
    this.configs.on(onEvents(resourceVersionChanged, schedule));
    this.peers.on(onEvents(resourceVersionChanged, schedule));
    this.pools.on(onEvents(resourceVersionChanged, schedule));
    // Its own blocks, and other nodes' blocks where it borrowed an address (routed as /32, /128).
    const ownBlock = matching<IPAMBlock>(
      (b) => b.spec.affinity === opts.node || b.spec.allocations.some((a) => a.node === opts.node),
    );
    this.blocks.on(onEvents(and(resourceVersionChanged, ownBlock), schedule));
  }

  async start(): Promise<void> {
    await Promise.all([this.configs.waitForSync(), this.peers.waitForSync()]);
    this.schedule();
  }

  /**
   * Stops syncing and the Secret watches; BIRD keeps running so that routes and sessions outlive
   * the agent. The other informers are the cache's.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.secrets.stop(), this.syncs.stop()]);
    this.bird.release();
  }

  /** Stops BIRD too (tests; removing BGP from a node). */
  async shutdown(): Promise<void> {
    await this.stop();
    await this.bird.stop(3000);
  }

  private schedule(): void {
    this.syncs.schedule();
  }

  /** BGP matters once a BGP pool or a BGPPeer exists; only then are all Nodes watched. */
  private async activate(): Promise<boolean> {
    if (this.active) return true;
    if (bgpPools(this.pools.list()).length === 0 && this.peers.list().length === 0) return false;
    this.active = true;
    const nodes = this.opts.cache.nodes(); // started by the cache, which has started already
    const shapesSessions = or<k8s.V1Node>(
      labelsChanged,
      annotationsChanged,
      changed((n) => n.status?.addresses),
      changed((n) => n.metadata?.deletionTimestamp),
    );
    nodes.on(onEvents(shapesSessions, () => this.schedule()));
    this.nodes = nodes;
    await nodes.waitForSync();
    this.opts.logger.info("BGP in use: watching nodes");
    return true;
  }

  /**
   * Before a graceful restart: this node's turn (gracefulRestartTurn: reflectors one by one, then
   * the clients), then until every BGP session it keeps is Established (or a minute passed). A peer
   * keeps this node's routes while it restarts, but two neighbours restarting at once each come back
   * to a peer that is still recovering, and a route can go missing in between; one configuration
   * change reaches every agent at the same moment, so without turns every node would restart
   * together (bench/bgp saw 188 routes lost that way at 50 nodes). Syncs wait meanwhile.
   */
  private async waitForSettledPeers(kept: ReadonlySet<string>, turn: number): Promise<void> {
    const turnMs = this.opts.gracefulRestartTurnMs ?? 3000;
    await sleep(turn * turnMs + Math.random() * (turnMs / 3));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !this.stopped) {
      const protocols = await this.bird.status().catch(() => []);
      const bgp = protocols.filter((p) => p.proto === "BGP" && kept.has(p.name));
      if (bgp.every((p) => p.bgpState === "Established")) return;
      await sleep(500 + Math.random() * 1000);
    }
    this.opts.logger.warn("graceful restart with BGP sessions still down (waited 60 s)");
  }

  /**
   * Services and EndpointSlices, watched only while this node announces LoadBalancer addresses
   * (their ingress addresses, and which Services have a ready endpoint here).
   */
  private async watchServices(): Promise<void> {
    if (this.services) return;
    const schedule = () => this.schedule();
    // started by the cache, which has started already
    const services = this.opts.cache.services();
    services.on(
      onEvents(
        changed<k8s.V1Service>((x) => [
          x.spec?.type,
          x.spec?.externalTrafficPolicy,
          x.status?.loadBalancer?.ingress,
        ]),
        schedule,
      ),
    );
    const slices = this.opts.cache.endpointSlices<EndpointSliceLike>();
    const node = this.opts.node;
    const readyHere = changed<EndpointSliceLike>((x) =>
      (x.endpoints ?? []).filter((e) => e.nodeName === node).map((e) => e.conditions?.ready),
    );
    slices.on(onEvents(readyHere, schedule));
    this.services = services;
    this.slices = slices;
    await Promise.all([services.waitForSync(), slices.waitForSync()]);
    this.opts.logger.info("announcing LoadBalancer addresses: watching Services and EndpointSlices");
  }

  /** One pass: topology, passwords, rendering, BIRD. */
  async sync(): Promise<void> {
    if (this.stopped || !(await this.activate())) return;
    const { node } = this.opts;
    const pools = this.pools.list();
    const topo = computeTopology(
      topologyInputFrom({
        nodes: this.nodes?.list() ?? [],
        pools,
        peers: this.peers.list(),
        ...(this.configs.get(BGP_CONFIGURATION_NAME)
          ? { config: this.configs.get(BGP_CONFIGURATION_NAME) }
          : {}),
      }),
    );
    const all = this.blocks.list();
    const borrowed = borrowedAddresses(
      all.map((b) => b.spec),
      node,
    );
    const { blocks, poolCIDRs } = announcements(node, pools, all, borrowed);
    const mine = topo.nodes[node];
    const problems = topo.problems
      .filter((p) => p.kind !== "Node" || p.name === node)
      .filter((p) => p.kind === "Node" || mineMentions(mine, node, p))
      .map((p) => `${p.kind}/${p.name}: ${p.message}`);
    if (!mine) {
      // not (or no longer) a BGP node: nothing to announce, nobody to talk to
      if (this.inUse && this.bird.running) {
        this.opts.logger.info("this node no longer takes part in BGP; BIRD keeps its last configuration");
      }
      this.rendered = [];
      this.problems = problems;
      this.publish();
      return;
    }
    this.inUse = true;
    let sessions = mine.sessions;
    const withPassword = sessions.filter((s) => s.password);
    this.passwordSessions = withPassword.length;
    if (withPassword.length > 0 && !this.md5) {
      sessions = sessions.filter((s) => !s.password);
      for (const s of withPassword)
        problems.push(
          `session to ${s.peerName} (${s.peerIP}) left out: it needs TCP MD5, which this kernel lacks`,
        );
    }
    const passwords = await this.readPasswords(referencedSecrets({ ...mine, sessions }));
    let loadBalancerIngress: string[] = [];
    if (mine.services?.loadBalancerIPs.length) {
      await this.watchServices();
      loadBalancerIngress = localLoadBalancerIngress(
        node,
        (this.services?.list() ?? []) as ServiceLike[],
        this.slices?.list() ?? [],
      );
    }
    const result = renderBirdConfig({
      node: { ...mine, sessions },
      blocks,
      poolCIDRs,
      passwords,
      loadBalancerIngress,
    });
    for (const p of result.problems) problems.push(`session to ${p.peerName} (${p.peerIP}): ${p.message}`);
    this.problems = problems.map((p) => this.clean(p));
    if (result.protocols.length === 0 && blocks.length === 0 && !this.bird.running) {
      this.rendered = [];
      this.publish();
      return;
    }
    try {
      const changedRoles = this.bird.running ? roleChanges(this.bird.activeConfig(), result.config) : [];
      if (changedRoles.length > 0)
        await this.waitForSettledPeers(
          new Set(result.protocols.map((p) => p.name)),
          gracefulRestartTurn(topo, node),
        );
      const r = await this.bird.apply(result.config, { graceful: changedRoles.length > 0 });
      this.applyError = undefined;
      this.rendered = result.protocols;
      if (r !== "unchanged")
        this.opts.logger.info(`BIRD ${r}`, {
          sessions: result.protocols.length,
          blocks: blocks.length,
          ...(changedRoles.length ? { roleChanged: changedRoles.length } : {}),
        });
    } catch (err) {
      this.applyError = this.clean(errorMessage(err));
      this.opts.logger.error("BIRD configuration not applied", { error: this.applyError });
    }
    for (const p of this.problems) this.opts.logger.warn("BGP problem", { problem: p });
    this.bird.watchStatus();
    this.publish();
  }

  /**
   * Passwords by secretRefKey from the watched Secrets (only the referenced ones, each by name).
   * A Secret that is gone leaves its sessions out (down) and is named in the BGPPasswords condition.
   */
  private async readPasswords(refs: SecretKeyRef[]): Promise<Record<string, string>> {
    const ns = this.opts.secretNamespace ?? ownNamespace();
    const where = (ref: SecretKeyRef) => ({ namespace: ref.namespace ?? ns, name: ref.name });
    await this.secrets.watchOnly(refs.map(where));
    const out: Record<string, string> = {};
    const missing: string[] = [];
    const values: string[] = [];
    for (const ref of refs) {
      const { namespace, name } = where(ref);
      const found = this.secrets.lookup({ namespace, name }, ref.key);
      if (found.state === "found") {
        out[secretRefKey(ref)] = found.value;
        values.push(found.value);
      } else if (found.state === "not-found") missing.push(`Secret ${namespace}/${name} not found`);
      else if (found.state === "missing-key")
        missing.push(`Secret ${namespace}/${name} has no key ${ref.key}`);
      else missing.push(`Secret ${namespace}/${name} cannot be read yet`);
    }
    if (missing.join() !== this.missingSecrets.join())
      for (const m of missing)
        this.opts.logger.warn("BGP password unavailable; its sessions stay down", { secret: m });
    this.missingSecrets = missing;
    this.passwordValues = values;
    return out;
  }

  private knownSecrets(): string[] {
    return this.passwordValues;
  }

  private clean(text: string): string {
    return redact(text, this.knownSecrets());
  }

  private onBirdStatus(protocols: BirdProtocol[], bfd?: BfdSession[]): void {
    this.sessions = sessionStatuses(protocols, this.rendered, bfd);
    this.publish();
  }

  private publish(): void {
    const fp = canonicalJson([
      this.sessions,
      this.problems,
      this.applyError,
      this.rendered.length,
      this.missingSecrets,
    ]);
    if (fp === this.lastFingerprint) return;
    this.lastFingerprint = fp;
    this.opts.onStatusChange?.();
  }

  /** Adds the BGP sessions and conditions to a NodeNetworkStatus being written. */
  decorate(status: NodeNetworkStatusStatus, generation: number | undefined): NodeNetworkStatusStatus {
    if (!this.inUse) return status;
    const { bgpSessions, conditions } = bgpStatus({
      conditions: status.conditions,
      generation,
      sessions: this.bird.running ? this.sessions : undefined,
      expected: this.rendered.length,
      problems: this.problems,
      ...(this.applyError ? { applyError: this.applyError } : {}),
      passwordSessions: this.passwordSessions,
      md5Supported: this.md5,
      missingSecrets: this.missingSecrets,
      secrets: this.knownSecrets(),
    });
    return { ...status, bgpSessions, conditions };
  }
}

/** A problem of a BGPPeer or the configuration matters to this node only if it shapes its sessions. */
function mineMentions(
  mine: NodeTopology | undefined,
  node: string,
  p: { kind: string; name: string; message: string },
): boolean {
  if (p.kind === "BGPConfiguration") return true;
  if (p.message.startsWith(`node ${node} `)) return true;
  return mine?.sessions.some((s) => s.source === `BGPPeer/${p.name}`) ?? false;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
