/**
 * One Flannel network shared by flanneld and weft-agent nodes, from what etcd and the caches hold
 * to what Weft must do. Pure: no I/O, so the controller, weftctl and tests compute it the same way.
 *
 * Every lease under `<prefix>/subnets/` is a node's subnet. Who runs the node decides who writes:
 * - a node weft-agent runs (its agent reports a NodeNetworkStatus, or it never ran flanneld) gets
 *   its lease from Weft, on Weft's own etcd lease; a lease flanneld left for it is taken over;
 * - a node flanneld runs keeps flanneld's lease untouched, and Weft turns that lease into the
 *   node's RouteIntent (its PublicIP and VtepMAC) for as long as the lease lives.
 */
import {
  ANNOTATIONS,
  blockName,
  type IPAMBlock,
  type IPPool,
  type RouteIntentSpec,
  vtepMAC,
} from "../../api/index.js";
import {
  type ActualLease,
  type ConfigMismatch,
  checkPoolAgainstConfig,
  type DesiredLease,
  type FlannelNetworkConfig,
  type FlannelVxlan,
  flannelBackendType,
  flannelVxlan,
  type LeasePlan,
  leaseValue,
  networkConfigValue,
  type ParsedLease,
  parseLease,
  parseNetworkConfig,
  planLeases,
  subnetInRange,
  subnetKey,
  subnetOfPool,
} from "../../datastore/index.js";
import { compareIP, parseCidr } from "../../net/index.js";
import { computeRouteIntent } from "../routeintent/compute.js";

export interface FlannelNode {
  name: string;
  /** IPv4 underlay address: what a lease's PublicIP names. */
  ip?: string;
  labels: Record<string, string>;
}

export interface FlannelInput {
  /** NodeSubnet IPv4 pools Flannel can describe, by name; the first is mirrored. */
  pools: readonly IPPool[];
  /** The value of `<prefix>/config`, if any. */
  config?: string;
  leases: readonly ActualLease[];
  /** etcd lease ids Weft holds (its keys hang on them). */
  ours: ReadonlySet<string>;
  nodes: readonly FlannelNode[];
  blocks: readonly IPAMBlock[];
  /** Nodes whose weft-agent has reported (they have a NodeNetworkStatus). */
  agents: ReadonlySet<string>;
}

export type LeaseOwner = "weft" | "flanneld" | "reservation";

/** One key under subnets/, as `weftctl flannel status` shows it. */
export interface LeaseRow {
  cidr: string;
  key: string;
  publicIP?: string;
  vtepMAC?: string;
  backendType?: string;
  owner: LeaseOwner;
  /** etcd lease id ("0" for a reservation). */
  lease: string;
  /** The Node whose underlay address is the PublicIP. */
  node?: string;
  /** Who runs that node's network now. */
  runBy?: "weft-agent" | "flanneld";
  /** Why Weft does not use the lease, when it does not. */
  problem?: string;
}

/** A RouteIntent made from a lease of a node flanneld runs. */
export interface LeaseIntent {
  name: string;
  labels: Record<string, string>;
  spec: RouteIntentSpec;
  /** The subnet key, e.g. 10.244.3.0-24. */
  lease: string;
}

export interface FlannelPlan {
  pool?: IPPool;
  /** Pools left out (Flannel knows one network). */
  skipped: string[];
  /** The config to write when there is none; undefined when one exists (it is never overwritten). */
  writeConfig?: string;
  /** The config in effect (the existing one, or the one to write). */
  config?: FlannelNetworkConfig;
  /** Why the existing config cannot be read. */
  configError?: string;
  mismatches: ConfigMismatch[];
  /** Whether Weft mirrors: a pool, and a config it agrees with. */
  active: boolean;
  vxlan?: FlannelVxlan;
  rows: LeaseRow[];
  leases: LeasePlan;
  intents: Map<string, LeaseIntent>;
  /** Nodes flanneld runs (their intents are the Flannel part's, even with no lease now). */
  flanneldNodes: Set<string>;
  /** Nodes weft-agent runs in the mirrored pool. */
  weftNodes: Set<string>;
  /** Per node: the subnet it keeps (its lease), with the lease's VTEP MAC. */
  subnetFor: Map<string, { cidr: string; vtepMAC?: string }>;
  /** Subnets held by leases, with the node their PublicIP names (undefined: a host without a Node). */
  leased: Map<string, string | undefined>;
  /**
   * Blocks of nodes flanneld runs that must record it (ANNOTATIONS.flannelLease) and the VTEP MAC
   * of its lease (ANNOTATIONS.vtepMAC), which the node keeps when weft-agent takes over.
   */
  blockMarks: Array<{ block: string; annotations: Record<string, string> }>;
}

/** RouteIntent name for a lease whose PublicIP is no Node's: `flannel-10-244-3-0-24`. */
export function leaseIntentName(cidr: string): string {
  return `flannel-${blockName(cidr)}`;
}

const ENCAP = { vxlan: "VXLAN", "host-gw": "HostGW" } as const;

export function planFlannel(input: FlannelInput): FlannelPlan {
  const pools = [...input.pools].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const pool = pools[0];
  const plan: FlannelPlan = {
    skipped: pools.slice(1).map((p) => p.metadata.name),
    mismatches: [],
    active: false,
    rows: [],
    leases: { actions: [], status: new Map() },
    intents: new Map(),
    flanneldNodes: new Set(),
    weftNodes: new Set(),
    subnetFor: new Map(),
    leased: new Map(),
    blockMarks: [],
  };
  if (pool) plan.pool = pool;
  if (input.config !== undefined) {
    const parsed = parseNetworkConfig(input.config);
    if ("error" in parsed) plan.configError = parsed.error;
    else {
      plan.config = parsed;
      if (pool) plan.mismatches = checkPoolAgainstConfig(pool, parsed);
    }
  } else if (pool) {
    plan.writeConfig = networkConfigValue(pool);
    plan.config = parseNetworkConfig(plan.writeConfig) as FlannelNetworkConfig;
  }
  if (!pool || !plan.config || plan.mismatches.length > 0) {
    plan.rows = input.leases.map((a) => row(a, input, undefined));
    return plan;
  }
  plan.active = true;
  const vx = flannelVxlan(pool, plan.config);
  if (flannelBackendType(pool) === "vxlan") plan.vxlan = vx;

  const byIP = new Map<string, FlannelNode>();
  for (const n of input.nodes) if (n.ip) byIP.set(n.ip, n);
  const blockOf = new Map<string, IPAMBlock>();
  for (const b of input.blocks)
    if (b.spec.pool === pool.metadata.name && b.spec.affinity && !blockOf.has(b.spec.affinity))
      blockOf.set(b.spec.affinity, b);

  // Other writers' leases of this network, lowest subnet first: a host named twice keeps the first.
  const foreign = new Map<string, { a: ActualLease; l: ParsedLease }>();
  const sorted = [...input.leases].sort((x, y) => compareIP(base(x.cidr), base(y.cidr)));
  for (const a of sorted) {
    const r = row(a, input, byIP);
    plan.rows.push(r);
    const l = parseLease(a.value);
    if (!subnetOfPool(a.cidr, pool))
      r.problem = `not a /${plan.config.subnetLen} subnet of ${pool.spec.cidr}`;
    else if (!l) r.problem = "unreadable lease value";
    if (r.problem || !l) continue;
    plan.leased.set(a.cidr, r.node);
    if (r.owner === "weft") continue;
    if (l.backendType !== flannelBackendType(pool)) {
      r.problem = `backend ${JSON.stringify(l.backendType)}, not the network's ${flannelBackendType(pool)}`;
      continue;
    }
    if (foreign.has(l.publicIP)) {
      r.problem = `a second lease for PublicIP ${l.publicIP}; ${foreign.get(l.publicIP)!.a.cidr} is used`;
      continue;
    }
    foreign.set(l.publicIP, { a, l });
  }

  // Who runs each node of the pool, and what that means.
  const desired: DesiredLease[] = [];
  for (const n of input.nodes) {
    const block = blockOf.get(n.name);
    const lease = n.ip ? foreign.get(n.ip) : undefined;
    const marks = block?.metadata.annotations ?? {};
    const adopted = marks[ANNOTATIONS.flannelLease] !== undefined;
    const agent = input.agents.has(n.name);
    if (lease)
      plan.subnetFor.set(n.name, {
        cidr: lease.a.cidr,
        ...(lease.l.vtepMAC ? { vtepMAC: lease.l.vtepMAC } : {}),
      });
    // An agent that reports takes the node over; until then a lease or an adopted block means
    // flanneld (a block adopted from a lease that expired: the node is down, not Weft's).
    const flanneld = agent ? Boolean(lease) && !block : Boolean(lease) || adopted;
    if (flanneld) {
      plan.flanneldNodes.add(n.name);
      if (lease && block?.spec.cidr === lease.a.cidr) {
        const want = {
          [ANNOTATIONS.flannelLease]: subnetKey(lease.a.cidr),
          ...(lease.l.vtepMAC ? { [ANNOTATIONS.vtepMAC]: lease.l.vtepMAC } : {}),
        };
        if (Object.entries(want).some(([k, v]) => marks[k] !== v))
          plan.blockMarks.push({ block: block.metadata.name, annotations: want });
      }
      continue;
    }
    if (!block || !n.ip) continue;
    plan.weftNodes.add(n.name);
    const type = flannelBackendType(pool)!;
    desired.push({
      cidr: block.spec.cidr,
      node: n.name,
      publicIP: n.ip,
      value: leaseValue({
        publicIP: n.ip,
        backendType: type,
        ...(type === "vxlan" ? { vni: vx.vni, vtepMAC: marks[ANNOTATIONS.vtepMAC] ?? vtepMAC(n.name) } : {}),
      }),
    });
  }
  plan.leases = planLeases(desired, input.leases, input.ours);

  // Leases of hosts flanneld runs become RouteIntents: named after their Node when there is one.
  const poolLabels = pool.spec.nodeSelector?.matchLabels ?? {};
  for (const [ip, { a, l }] of foreign) {
    const node = byIP.get(ip);
    if (node && !plan.flanneldNodes.has(node.name)) continue;
    const name = node?.name ?? leaseIntentName(a.cidr);
    const key = subnetKey(a.cidr);
    const r = plan.rows.find((x) => x.cidr === a.cidr);
    if (r) r.runBy = "flanneld";
    if (plan.vxlan && !l.vtepMAC) {
      if (r) r.problem = "vxlan lease without a VtepMAC";
      continue;
    }
    // Flannel networks are IPv4: the lease's PublicIP is the host's IPv4 underlay address.
    const { spec } = computeRouteIntent({
      node: name,
      underlay: { 4: ip },
      blocks: [{ cidr: a.cidr, encapsulation: ENCAP[flannelBackendType(pool)!] }],
      ...(plan.vxlan
        ? {
            vtep: {
              ip: base(a.cidr),
              mac: l.vtepMAC!,
              vni: l.vni ?? vx.vni,
              port: vx.port,
              device: vx.device,
            },
          }
        : {}),
    });
    plan.intents.set(name, {
      name,
      labels: { ...(node ? node.labels : poolLabels), [LEASE_LABEL]: key },
      spec,
      lease: key,
    });
  }
  for (const r of plan.rows) {
    if (r.owner === "weft" || (r.node && plan.weftNodes.has(r.node))) r.runBy = "weft-agent";
  }
  return plan;
}

const LEASE_LABEL = ANNOTATIONS.flannelLease;

function base(cidr: string): string {
  return cidr.slice(0, cidr.indexOf("/"));
}

function row(a: ActualLease, input: FlannelInput, byIP: Map<string, FlannelNode> | undefined): LeaseRow {
  const l = parseLease(a.value);
  const owner: LeaseOwner = input.ours.has(a.lease) ? "weft" : a.lease === "0" ? "reservation" : "flanneld";
  const node = l && (byIP ?? new Map(input.nodes.filter((n) => n.ip).map((n) => [n.ip!, n]))).get(l.publicIP);
  return {
    cidr: a.cidr,
    key: subnetKey(a.cidr),
    owner,
    lease: a.lease,
    ...(l ? { publicIP: l.publicIP, backendType: l.backendType } : {}),
    ...(l?.vtepMAC ? { vtepMAC: l.vtepMAC } : {}),
    ...(node ? { node: node.name } : {}),
  };
}

/**
 * Blocks of the pool no other node may claim: every leased subnet but this node's own, and (with
 * a config) the subnets flanneld would never hand out (outside SubnetMin..SubnetMax).
 */
export function unavailableFor(plan: FlannelPlan, node: string): { has(cidr: string): boolean } | undefined {
  if (!plan.active || !plan.config) return undefined;
  const cfg = plan.config;
  return {
    has: (cidr) => {
      if (plan.leased.has(cidr)) return plan.leased.get(cidr) !== node;
      return parseCidr(cidr).prefix === cfg.subnetLen && !subnetInRange(cfg, cidr);
    },
  };
}
