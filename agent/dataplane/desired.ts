/**
 * Desired kernel state from the RouteIntents of the other nodes and this node's own blocks.
 * Pure: no I/O, deterministic for a given input (intents are taken in node-name order, so which
 * of two conflicting claims wins never depends on watch order).
 */
import type { RouteIntentSpec } from "../../api/index.js";
import { errorMessage } from "../../lib/index.js";
import { canonicalIP, FAMILY_BITS, familyOfValid } from "../../net/index.js";
import { canonicalCIDR, canonicalMAC, formatCIDR, ipToBytes } from "../../netlink/index.js";
import {
  DEFAULT_VXLAN,
  type DesiredState,
  type FdbEntry,
  fdbMacKey,
  type NeighborEntry,
  neighborKey,
  type RouteEntry,
  routeKey,
  type VxlanDeviceConfig,
} from "./model.js";

export interface DesiredInput {
  /** This node's name: its own intent describes how others reach it and is not applied here. */
  node: string;
  /** Every RouteIntent spec (this node's included). */
  intents: readonly RouteIntentSpec[];
  /** This node's blocks: each gets a blackhole route so unassigned addresses never leak out. */
  ownBlocks?: readonly string[];
  /** This node's underlay IP; defaults to its own intent's. */
  underlayIP?: string;
  /** Overrides for the local VXLAN device (name, VNI, port, MTU, underlay device). */
  vxlan?: Partial<VxlanDeviceConfig>;
  /** Whether the kernel has IPIP (these machines' kernels do not). */
  ipipSupported?: boolean;
  /**
   * This node's underlay subnets (canonical, from its kernel): a CrossSubnet route of a peer whose
   * direct next hop lies in one of them goes there directly instead of through the tunnel.
   */
  underlaySubnets?: readonly string[];
}

export interface DesiredResult {
  desired: DesiredState;
  /** Entries left out and why (conflicts, invalid values, unsupported encapsulation). */
  problems: string[];
}

export function computeDesired(input: DesiredInput): DesiredResult {
  const problems: string[] = [];
  const own = input.intents.find((i) => i.node === input.node);
  const remotes = input.intents.filter((i) => i.node !== input.node).sort(byNode);

  const vxlan = vxlanConfig(input, own, remotes.find(isVxlan), problems);
  const ctx = intentContext(input, vxlan);

  const routes = new Map<string, RouteEntry>();
  const claimedBy = new Map<string, string>();
  for (const dst of ownBlockRoutes(input.ownBlocks, problems)) {
    routes.set(routeKey(dst), { dst, type: "blackhole" });
    claimedBy.set(routeKey(dst), OWN_BLOCK);
  }

  const neighbors = new Map<string, NeighborEntry>();
  const fdb = new Map<string, FdbEntry>();

  for (const intent of remotes) {
    const who = `RouteIntent ${intent.node}`;
    const c = contributionOf(intent, ctx);
    problems.push(...c.problems);
    for (const entry of c.routes) {
      const key = routeKey(entry.dst);
      const holder = claimedBy.get(key);
      if (holder) {
        problems.push(routeConflict(who, entry, holder));
        continue;
      }
      routes.set(key, entry);
      claimedBy.set(key, who);
    }
    for (const entry of c.neighbors) {
      const key = neighborKey(entry.device, entry.ip);
      const prev = neighbors.get(key);
      if (prev && prev.mac !== entry.mac) {
        problems.push(neighborConflict(who, entry, prev));
        continue;
      }
      neighbors.set(key, entry);
    }
    for (const entry of c.fdb) {
      const key = fdbMacKey(entry.device, entry.mac);
      const prev = fdb.get(key);
      if (prev && prev.dst !== entry.dst) {
        problems.push(fdbConflict(who, entry, prev));
        continue;
      }
      fdb.set(key, entry);
    }
  }

  return {
    desired: {
      ...(vxlan ? { vxlan } : {}),
      routes: [...routes.values()],
      neighbors: [...neighbors.values()],
      fdb: [...fdb.values()],
    },
    problems,
  };
}

export const OWN_BLOCK = "this node's block";

export const routeConflict = (who: string, entry: RouteEntry, holder: string) =>
  `${who}: route ${entry.dst} is already claimed by ${holder}; skipped`;
export const neighborConflict = (who: string, entry: NeighborEntry, prev: NeighborEntry) =>
  `${who}: neighbor ${entry.ip} is already claimed with ${prev.mac}; skipped`;
export const fdbConflict = (who: string, entry: FdbEntry, prev: FdbEntry) =>
  `${who}: fdb ${entry.mac} is already claimed by ${prev.dst}; skipped`;

export const isVxlan = (i: RouteIntentSpec) => i.encapsulation === "VXLAN";

/** Canonical prefixes of this node's blocks (each becomes a blackhole route). */
export function ownBlockRoutes(blocks: readonly string[] | undefined, problems: string[]): string[] {
  const out: string[] = [];
  for (const block of blocks ?? []) {
    const dst = safe(() => canonicalCIDR(block), problems, `own block ${JSON.stringify(block)}`);
    if (dst) out.push(dst);
  }
  return out;
}

/** What one remote intent's entries depend on besides the intent itself. */
export interface IntentContext {
  /** The managed VXLAN device's name. */
  device: string;
  /** Whether a local VXLAN device is wanted (neighbors and FDB entries need one). */
  vxlan: boolean;
  ipipSupported: boolean;
  /** This node's underlay subnets, parsed (CrossSubnet decisions). */
  subnets: readonly Subnet[];
}

export function intentContext(
  input: Pick<DesiredInput, "vxlan" | "ipipSupported" | "underlaySubnets">,
  vxlan: VxlanDeviceConfig | undefined,
): IntentContext {
  return {
    device: vxlan?.name ?? input.vxlan?.name ?? DEFAULT_VXLAN.name,
    vxlan: vxlan !== undefined,
    ipipSupported: Boolean(input.ipipSupported),
    subnets: (input.underlaySubnets ?? []).flatMap((c) => {
      const s = parseSubnet(c);
      return s ? [s] : [];
    }),
  };
}

export const contextKey = (c: IntentContext) =>
  `${c.device}|${c.vxlan ? 1 : 0}|${c.ipipSupported ? 1 : 0}|${c.subnets.map((s) => s.text).join(",")}`;

/** A subnet as bytes and prefix, to test membership without string games. */
export interface Subnet {
  text: string;
  bytes: Buffer;
  prefix: number;
}

/** The network of an interface address (`192.0.2.11/24` -> 192.0.2.0/24); undefined if unparsable. */
export function parseSubnet(cidr: string): Subnet | undefined {
  const slash = cidr.indexOf("/");
  const prefix = Number(cidr.slice(slash + 1));
  if (slash < 0 || !/^\d+$/.test(cidr.slice(slash + 1))) return undefined;
  try {
    const bytes = Buffer.from(ipToBytes(cidr.slice(0, slash)).bytes);
    if (prefix > bytes.length * 8) return undefined;
    for (let bit = prefix; bit < bytes.length * 8; bit++)
      bytes[bit >> 3] = bytes[bit >> 3]! & ~(0x80 >> (bit & 7));
    return { text: formatCIDR(bytes, prefix), bytes, prefix };
  } catch {
    return undefined;
  }
}

export function subnetContains(s: Subnet, ip: string): boolean {
  const b = ipToBytes(ip).bytes;
  if (b.length !== s.bytes.length) return false;
  for (let bit = 0; bit < s.prefix; bit += 8) {
    const left = s.prefix - bit;
    const mask = left >= 8 ? 0xff : (0xff << (8 - left)) & 0xff;
    if (((b[bit / 8]! ^ s.bytes[bit / 8]!) & mask) !== 0) return false;
  }
  return true;
}

/**
 * One remote intent's valid entries, in intent order, and what was wrong with the rest. Entries
 * may still lose to other intents' claims (conflicts are the merge's business, not this one's).
 */
export interface Contribution {
  routes: RouteEntry[];
  neighbors: NeighborEntry[];
  fdb: FdbEntry[];
  problems: string[];
  /** CrossSubnet: the path taken to this peer, per family of its CrossSubnet routes. */
  paths?: Array<{ family: "IPv4" | "IPv6"; path: "Direct" | "VXLAN" }>;
}

/**
 * Validation and canonicalisation of a spec is most of computeDesired's cost, and a spec object
 * from an informer cache is replaced, never mutated, when the intent changes: so results are
 * remembered per spec object (and context).
 */
const memo = new WeakMap<RouteIntentSpec, { ctx: string; c: Contribution }>();

export function contributionOf(intent: RouteIntentSpec, ctx: IntentContext): Contribution {
  const key = contextKey(ctx);
  const hit = memo.get(intent);
  if (hit && hit.ctx === key) return hit.c;
  const c = computeContribution(intent, ctx);
  memo.set(intent, { ctx: key, c });
  return c;
}

function computeContribution(intent: RouteIntentSpec, ctx: IntentContext): Contribution {
  const out: Contribution = { routes: [], neighbors: [], fdb: [], problems: [] };
  const problems = out.problems;
  const who = `RouteIntent ${intent.node}`;
  const { device } = ctx;
  if (intent.encapsulation === "BGP") return out; // BIRD programs these
  if (intent.encapsulation === "IPIP" && !ctx.ipipSupported) {
    problems.push(`${who}: IPIP is not supported by this kernel; its routes are not programmed`);
    return out;
  }
  const vx = isVxlan(intent);
  if (vx && !ctx.vxlan) {
    problems.push(`${who}: VXLAN without a local VXLAN device (no underlay IP); skipped`);
    return out;
  }

  const paths = new Map<"IPv4" | "IPv6", "Direct" | "VXLAN">();
  for (const r of intent.routes ?? []) {
    let entry = safe(() => routeFrom(r), problems, `${who}: route ${JSON.stringify(r)}`);
    if (!entry) continue;
    if (entry.device !== undefined && entry.device !== device && vx) {
      problems.push(`${who}: route ${entry.dst} names device ${entry.device}, not ${device}; skipped`);
      continue;
    }
    if (r.direct !== undefined) {
      const direct = safe(
        () => directFrom(entry!.dst, r.direct!),
        problems,
        `${who}: route ${entry.dst} direct ${JSON.stringify(r.direct)}`,
      );
      if (!direct) continue;
      const family = direct.includes(":") ? "IPv6" : "IPv4";
      const near = ctx.subnets.some((s) => subnetContains(s, direct));
      // one decision per peer and family: every block of a peer goes the same way
      const path = paths.get(family) ?? (near ? "Direct" : "VXLAN");
      paths.set(family, path);
      if (path === "Direct") entry = { dst: entry.dst, type: "unicast", gateway: direct };
    }
    out.routes.push(entry);
  }
  if (paths.size) out.paths = [...paths].map(([family, path]) => ({ family, path }));

  for (const n of intent.neighbors ?? []) {
    const entry = safe(
      () => ({ ip: canonicalIP(n.ip), mac: canonicalMAC(n.mac), device: n.device }),
      problems,
      `${who}: neighbor ${JSON.stringify(n)}`,
    );
    if (!entry) continue;
    if (entry.device !== device || !ctx.vxlan) {
      problems.push(`${who}: neighbor ${entry.ip} on ${entry.device}: only ${device} is managed; skipped`);
      continue;
    }
    out.neighbors.push(entry);
  }

  for (const f of intent.fdb ?? []) {
    const entry = safe(
      () => ({ mac: canonicalMAC(f.mac), dst: canonicalIP(f.dst), device: f.device }),
      problems,
      `${who}: fdb ${JSON.stringify(f)}`,
    );
    if (!entry) continue;
    if (entry.device !== device || !ctx.vxlan) {
      problems.push(`${who}: fdb ${entry.mac} on ${entry.device}: only ${device} is managed; skipped`);
      continue;
    }
    out.fdb.push(entry);
  }
  return out;
}

const byNode = (a: RouteIntentSpec, b: RouteIntentSpec) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0);

function safe<T>(f: () => T, problems: string[], what: string): T | undefined {
  try {
    return f();
  } catch (err) {
    problems.push(`${what}: ${errorMessage(err)}`);
    return undefined;
  }
}

function routeFrom(r: RouteIntentSpec["routes"][number]): RouteEntry {
  const dst = canonicalCIDR(r.dst);
  if (!r.gateway && !r.device) throw new Error("route needs a gateway or a device");
  const gateway = r.gateway ? canonicalIP(r.gateway) : undefined;
  if (gateway && familyOfValid(gateway) !== familyOfValid(dst)) {
    throw new Error("gateway and destination are of different families");
  }
  return {
    dst,
    type: "unicast",
    ...(gateway ? { gateway } : {}),
    ...(r.device ? { device: r.device } : {}),
    ...(r.onlink ? { onlink: true } : {}),
  };
}

/** The direct next hop of a CrossSubnet route: an address of the route's own family. */
function directFrom(dst: string, direct: string): string {
  const ip = canonicalIP(direct);
  if (ipToBytes(ip).family !== ipToBytes(dst.split("/")[0]!).family)
    throw new Error("direct next hop and destination are of different families");
  return ip;
}

/**
 * The local VXLAN device is wanted when this node or any other node uses VXLAN. Its VNI and port
 * come from this node's VTEP, else from the first remote VTEP in node order (all nodes of a pool
 * share them): `anyRemote` is that first remote VXLAN intent.
 */
export function vxlanConfig(
  input: Omit<DesiredInput, "intents">,
  own: RouteIntentSpec | undefined,
  anyRemote: RouteIntentSpec | undefined,
  problems: string[],
): VxlanDeviceConfig | undefined {
  const ownVxlan = own?.encapsulation === "VXLAN" ? own : undefined;
  if (!ownVxlan && !anyRemote) return undefined;
  const localIP = input.underlayIP ?? own?.underlayIP;
  if (!localIP) {
    problems.push("VXLAN is in use but this node has no underlay IP");
    return undefined;
  }
  const vtep = ownVxlan?.vtep ?? anyRemote?.vtep;
  const o = input.vxlan ?? {};
  const cfg: VxlanDeviceConfig = {
    // all nodes of a network name one device (Flannel's profile: flannel.<vni>, shared with flanneld)
    name: o.name ?? vtep?.device ?? DEFAULT_VXLAN.name,
    vni: o.vni ?? vtep?.vni ?? DEFAULT_VXLAN.vni,
    port: o.port ?? vtep?.port ?? DEFAULT_VXLAN.port,
    localIP: canonicalIP(localIP),
  };
  const ownVtep = ownVxlan?.vtep;
  if (ownVtep) {
    try {
      cfg.mac = canonicalMAC(ownVtep.mac);
      const addresses: string[] = [];
      for (const [raw, family] of [
        [ownVtep.ip, 4],
        [ownVtep.ipv6, 6],
      ] as const) {
        if (raw === undefined) continue;
        const ip = canonicalIP(raw);
        if (familyOfValid(ip) !== family) throw new Error(`VTEP address ${ip} is not IPv${family}`);
        addresses.push(`${ip}/${FAMILY_BITS[family]}`);
      }
      if (addresses.length) cfg.addresses = addresses;
    } catch (err) {
      problems.push(`own VTEP: ${errorMessage(err)}`);
    }
  }
  if (ownVtep?.mtu !== undefined) cfg.mtu = ownVtep.mtu;
  if (o.mtu !== undefined) cfg.mtu = o.mtu;
  if (o.underlayDevice !== undefined) cfg.underlayDevice = o.underlayDevice;
  if (o.mac !== undefined) cfg.mac = canonicalMAC(o.mac);
  if (o.addresses !== undefined) cfg.addresses = o.addresses;
  return cfg;
}

/**
 * Desired state by key: what every diff and event check reads. Built from a DesiredState by
 * indexDesired, or kept current entry by entry by a DesiredTracker.
 */
export interface DesiredIndex {
  vxlan?: VxlanDeviceConfig;
  routes: Map<string, RouteEntry>;
  neighbors: Map<string, NeighborEntry>;
  /** By fdbMacKey: one remote per MAC. */
  fdb: Map<string, FdbEntry>;
  /** Devices whose neighbor and FDB tables we own. */
  devices: Set<string>;
  /**
   * Entries on those devices that are not ours although we did not plan them: the VTEPs of nodes
   * flanneld runs (RouteIntents made from their leases), by neighborKey -> MAC and by fdbMacKey
   * -> remote. An unplanned entry equal to one of these is never deleted.
   */
  keep?: { neighbors: Map<string, string>; fdb: Map<string, string> };
}

/** Whether an unplanned neighbor entry belongs to a node flanneld runs (see DesiredIndex.keep). */
export function keptNeighbor(want: DesiredIndex, key: string, mac: string): boolean {
  return want.keep?.neighbors.get(key) === mac;
}

/** Whether an unplanned FDB entry belongs to a node flanneld runs (see DesiredIndex.keep). */
export function keptFdb(want: DesiredIndex, f: { device: string; mac: string; dst: string }): boolean {
  return want.keep?.fdb.get(fdbMacKey(f.device, f.mac)) === f.dst;
}

/** The entries of the given intents' VTEPs, canonical, by key: what DesiredIndex.keep holds. */
export function keepOf(intents: readonly RouteIntentSpec[]): NonNullable<DesiredIndex["keep"]> {
  const neighbors = new Map<string, string>();
  const fdb = new Map<string, string>();
  for (const i of intents) {
    for (const n of i.neighbors ?? []) {
      try {
        neighbors.set(neighborKey(n.device, canonicalIP(n.ip)), canonicalMAC(n.mac));
      } catch {
        /* invalid entries are reported where the intent is applied */
      }
    }
    for (const f of i.fdb ?? []) {
      try {
        fdb.set(fdbMacKey(f.device, canonicalMAC(f.mac)), canonicalIP(f.dst));
      } catch {
        /* as above */
      }
    }
  }
  return { neighbors, fdb };
}

export function indexDesired(state: DesiredState): DesiredIndex {
  const routes = new Map<string, RouteEntry>();
  for (const r of state.routes) routes.set(routeKey(r.dst, r.metric), r);
  const neighbors = new Map<string, NeighborEntry>();
  for (const n of state.neighbors) neighbors.set(neighborKey(n.device, n.ip), n);
  const fdb = new Map<string, FdbEntry>();
  for (const f of state.fdb) fdb.set(fdbMacKey(f.device, f.mac), f);
  const devices = new Set<string>();
  if (state.vxlan) devices.add(state.vxlan.name);
  return { ...(state.vxlan ? { vxlan: state.vxlan } : {}), routes, neighbors, fdb, devices };
}
