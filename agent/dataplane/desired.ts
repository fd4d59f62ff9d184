/**
 * Desired kernel state from the RouteIntents of the other nodes and this node's own blocks.
 * Pure: no I/O, deterministic for a given input (intents are taken in node-name order, so which
 * of two conflicting claims wins never depends on watch order).
 */
import type { RouteIntentSpec } from "../../api/routeintent.js";
import { canonicalCIDR, canonicalIP, canonicalMAC, ipToBytes } from "../netlink/addr.js";
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

  const vxlan = vxlanConfig(input, own, remotes, problems);
  const device = vxlan?.name ?? input.vxlan?.name ?? DEFAULT_VXLAN.name;

  const routes = new Map<string, RouteEntry>();
  const claimedBy = new Map<string, string>();
  for (const block of input.ownBlocks ?? []) {
    const dst = safe(() => canonicalCIDR(block), problems, `own block ${JSON.stringify(block)}`);
    if (!dst) continue;
    routes.set(routeKey(dst), { dst, type: "blackhole" });
    claimedBy.set(routeKey(dst), "this node's block");
  }

  const neighbors = new Map<string, NeighborEntry>();
  const fdb = new Map<string, FdbEntry>();

  for (const intent of remotes) {
    const who = `RouteIntent ${intent.node}`;
    if (intent.encapsulation === "BGP") continue; // BIRD programs these
    if (intent.encapsulation === "IPIP" && !input.ipipSupported) {
      problems.push(`${who}: IPIP is not supported by this kernel; its routes are not programmed`);
      continue;
    }
    const isVxlan = intent.encapsulation === "VXLAN";
    if (isVxlan && !vxlan) {
      problems.push(`${who}: VXLAN without a local VXLAN device (no underlay IP); skipped`);
      continue;
    }

    for (const r of intent.routes ?? []) {
      const entry = safe(() => routeFrom(r), problems, `${who}: route ${JSON.stringify(r)}`);
      if (!entry) continue;
      if (entry.device !== undefined && entry.device !== device && isVxlan) {
        problems.push(`${who}: route ${entry.dst} names device ${entry.device}, not ${device}; skipped`);
        continue;
      }
      const key = routeKey(entry.dst);
      const holder = claimedBy.get(key);
      if (holder) {
        problems.push(`${who}: route ${entry.dst} is already claimed by ${holder}; skipped`);
        continue;
      }
      routes.set(key, entry);
      claimedBy.set(key, who);
    }

    for (const n of intent.neighbors ?? []) {
      const entry = safe(
        () => ({ ip: canonicalIP(n.ip), mac: canonicalMAC(n.mac), device: n.device }),
        problems,
        `${who}: neighbor ${JSON.stringify(n)}`,
      );
      if (!entry) continue;
      if (entry.device !== device || !vxlan) {
        problems.push(`${who}: neighbor ${entry.ip} on ${entry.device}: only ${device} is managed; skipped`);
        continue;
      }
      const key = neighborKey(entry.device, entry.ip);
      const prev = neighbors.get(key);
      if (prev && prev.mac !== entry.mac) {
        problems.push(`${who}: neighbor ${entry.ip} is already claimed with ${prev.mac}; skipped`);
        continue;
      }
      neighbors.set(key, entry);
    }

    for (const f of intent.fdb ?? []) {
      const entry = safe(
        () => ({ mac: canonicalMAC(f.mac), dst: canonicalIP(f.dst), device: f.device }),
        problems,
        `${who}: fdb ${JSON.stringify(f)}`,
      );
      if (!entry) continue;
      if (entry.device !== device || !vxlan) {
        problems.push(`${who}: fdb ${entry.mac} on ${entry.device}: only ${device} is managed; skipped`);
        continue;
      }
      const key = fdbMacKey(entry.device, entry.mac);
      const prev = fdb.get(key);
      if (prev && prev.dst !== entry.dst) {
        problems.push(`${who}: fdb ${entry.mac} is already claimed by ${prev.dst}; skipped`);
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

const byNode = (a: RouteIntentSpec, b: RouteIntentSpec) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0);

function safe<T>(f: () => T, problems: string[], what: string): T | undefined {
  try {
    return f();
  } catch (err) {
    problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

function routeFrom(r: RouteIntentSpec["routes"][number]): RouteEntry {
  const dst = canonicalCIDR(r.dst);
  if (!r.gateway && !r.device) throw new Error("route needs a gateway or a device");
  const gateway = r.gateway ? canonicalIP(r.gateway) : undefined;
  if (gateway && ipToBytes(gateway).family !== ipToBytes(dst.split("/")[0]!).family) {
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

/**
 * The local VXLAN device is wanted when this node or any other node uses VXLAN. Its VNI and port
 * come from this node's VTEP, else from the first remote VTEP (all nodes of a pool share them).
 */
function vxlanConfig(
  input: DesiredInput,
  own: RouteIntentSpec | undefined,
  remotes: RouteIntentSpec[],
  problems: string[],
): VxlanDeviceConfig | undefined {
  const ownVxlan = own?.encapsulation === "VXLAN" ? own : undefined;
  const anyRemote = remotes.find((r) => r.encapsulation === "VXLAN");
  if (!ownVxlan && !anyRemote) return undefined;
  const localIP = input.underlayIP ?? own?.underlayIP;
  if (!localIP) {
    problems.push("VXLAN is in use but this node has no underlay IP");
    return undefined;
  }
  const vtep = ownVxlan?.vtep ?? anyRemote?.vtep;
  const o = input.vxlan ?? {};
  const cfg: VxlanDeviceConfig = {
    name: o.name ?? DEFAULT_VXLAN.name,
    vni: o.vni ?? vtep?.vni ?? DEFAULT_VXLAN.vni,
    port: o.port ?? vtep?.port ?? DEFAULT_VXLAN.port,
    localIP: canonicalIP(localIP),
  };
  const ownVtep = ownVxlan?.vtep;
  if (ownVtep) {
    try {
      cfg.mac = canonicalMAC(ownVtep.mac);
      const ip = canonicalIP(ownVtep.ip);
      cfg.address = `${ip}/${ipToBytes(ip).family === 2 ? 32 : 128}`;
    } catch (err) {
      problems.push(`own VTEP: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (o.mtu !== undefined) cfg.mtu = o.mtu;
  if (o.underlayDevice !== undefined) cfg.underlayDevice = o.underlayDevice;
  if (o.mac !== undefined) cfg.mac = canonicalMAC(o.mac);
  if (o.address !== undefined) cfg.address = o.address;
  return cfg;
}

/** Desired state by key, built once per setDesired and reused by every diff and event check. */
export interface DesiredIndex {
  state: DesiredState;
  routes: Map<string, RouteEntry>;
  neighbors: Map<string, NeighborEntry>;
  /** By fdbMacKey: one remote per MAC. */
  fdb: Map<string, FdbEntry>;
  /** Devices whose neighbor and FDB tables we own. */
  devices: Set<string>;
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
  return { state, routes, neighbors, fdb, devices };
}
