/**
 * Flannel's etcd layout and JSON, as flannel documents them (Documentation/reservations.md,
 * pkg/subnet/config.go, pkg/lease): the network config at `<prefix>/config` and one key per node
 * subnet at `<prefix>/subnets/<ip>-<len>` whose value is the lease attributes. Pure functions; the
 * byte layout is pinned by fixtures in test/fixtures/flannel/.
 */
import { effectiveBlockSize, type IPPool, withPoolDefaults } from "../api/index.js";
import {
  cidrContains,
  cidrLast,
  compareIP,
  familyOfValid,
  formatCidr,
  formatIP,
  parseCidr,
  parseIPv4,
  tryCanonicalAddress,
  tryParseCidr,
} from "../net/index.js";

export const DEFAULT_FLANNEL_PREFIX = "/coreos.com/network";

/**
 * The key that records which etcd lease Weft's subnet keys hang on (itself on that lease): how
 * the controller knows its own keys after a restart, and how weftctl tells them from flanneld's.
 */
export function flannelOwnerKey(storePrefix: string, flannelPrefix = DEFAULT_FLANNEL_PREFIX): string {
  return `${storePrefix.replace(/\/+$/, "")}/flannel-owner${flannelPrefix.replace(/\/+$/, "")}`;
}
/** Flannel's lease TTL: 24 h. */
export const FLANNEL_LEASE_TTL_SECONDS = 24 * 3600;
/** flanneld's VXLAN defaults: VNI 1, and port 0 in its config, which the kernel takes as 8472. */
export const FLANNEL_VXLAN_DEFAULTS = { vni: 1, port: 8472 } as const;

/** Which Flannel backend a pool maps to; undefined when Flannel has no equivalent. */
export function flannelBackendType(pool: IPPool): "vxlan" | "host-gw" | undefined {
  const enc = withPoolDefaults(pool).spec.encapsulation;
  if (enc === "VXLAN") return "vxlan";
  if (enc === "HostGW") return "host-gw";
  return undefined;
}

/** Pools Flannel can describe: IPv4, NodeSubnet, VXLAN or host-gw, not disabled. */
export function mirrorable(pool: IPPool): boolean {
  return (
    pool.spec.allocation === "NodeSubnet" &&
    familyOfValid(pool.spec.cidr) === 4 &&
    !pool.spec.disabled &&
    flannelBackendType(pool) !== undefined &&
    !pool.metadata.deletionTimestamp
  );
}

/** Flannel's network config with flanneld's defaults filled in (pkg/subnet/config.go). */
export interface FlannelNetworkConfig {
  /** Canonical CIDR. */
  network: string;
  subnetLen: number;
  /** First and last subnet flanneld hands out (network addresses). */
  subnetMin: string;
  subnetMax: string;
  /** "vxlan", "host-gw", "udp", ... as written (flanneld's default without a Backend is udp). */
  backendType: string;
  /** vxlan only: effective VNI and UDP port. */
  vni?: number;
  port?: number;
}

/**
 * Reads `<prefix>/config` the way flanneld does: SubnetLen defaults to 24 (or the network's prefix
 * + 2 for networks smaller than /22), SubnetMin skips the first subnet, SubnetMax is the last one,
 * a vxlan backend without VNI/Port means VNI 1 and port 8472.
 */
export function parseNetworkConfig(value: string): FlannelNetworkConfig | { error: string } {
  let raw: {
    Network?: unknown;
    SubnetLen?: unknown;
    SubnetMin?: unknown;
    SubnetMax?: unknown;
    Backend?: { Type?: unknown; VNI?: unknown; Port?: unknown } | null;
  };
  try {
    raw = JSON.parse(value) as typeof raw;
  } catch (err) {
    return { error: `not JSON: ${(err as Error).message}` };
  }
  if (typeof raw !== "object" || raw === null) return { error: "not a JSON object" };
  const network = tryParseCidr(raw.Network, false);
  if (network?.family !== 4) return { error: `Network ${JSON.stringify(raw.Network)} is not an IPv4 CIDR` };
  const base = network.base & ~((1n << BigInt(32 - network.prefix)) - 1n);
  const net = { family: 4 as const, base, prefix: network.prefix };
  let subnetLen: number;
  if (raw.SubnetLen !== undefined && raw.SubnetLen !== 0) {
    if (typeof raw.SubnetLen !== "number" || !Number.isInteger(raw.SubnetLen) || raw.SubnetLen > 30)
      return { error: `SubnetLen ${JSON.stringify(raw.SubnetLen)} is not a prefix length up to 30` };
    if (raw.SubnetLen < net.prefix + 2) return { error: "SubnetLen leaves room for fewer than four subnets" };
    subnetLen = raw.SubnetLen;
  } else if (net.prefix > 28) return { error: "Network is smaller than /28" };
  else subnetLen = net.prefix <= 22 ? 24 : net.prefix + 2;
  const size = 1n << BigInt(32 - subnetLen);
  const bound = (v: unknown, fallback: bigint, name: string): bigint | string => {
    if (v === undefined || v === "" || v === "0.0.0.0") return fallback;
    const ip = typeof v === "string" ? parseIPv4(v) : -1;
    if (ip < 0) return `${name} ${JSON.stringify(v)} is not an IPv4 address`;
    const b = BigInt(ip);
    if (!cidrContains(net, { family: 4, value: b })) return `${name} is not in the range of the Network`;
    if (b % size !== 0n) return `${name} is not on a SubnetLen boundary`;
    return b;
  };
  const min = bound(raw.SubnetMin, base + size, "SubnetMin");
  if (typeof min === "string") return { error: min };
  const max = bound(raw.SubnetMax, cidrLast(net) + 1n - size, "SubnetMax");
  if (typeof max === "string") return { error: max };
  const backendType = typeof raw.Backend?.Type === "string" ? raw.Backend.Type : raw.Backend ? "" : "udp";
  const out: FlannelNetworkConfig = {
    network: formatCidr(net),
    subnetLen,
    subnetMin: formatIP(4, min),
    subnetMax: formatIP(4, max),
    backendType,
  };
  if (backendType === "vxlan") {
    const vni = raw.Backend?.VNI;
    const port = raw.Backend?.Port;
    out.vni = typeof vni === "number" && vni > 0 ? vni : FLANNEL_VXLAN_DEFAULTS.vni;
    out.port = typeof port === "number" && port > 0 ? port : FLANNEL_VXLAN_DEFAULTS.port;
  }
  return out;
}

/** VXLAN settings of a pool in the Flannel profile: what the pool says, else the config, else Flannel's defaults. */
export interface FlannelVxlan {
  vni: number;
  port: number;
  /** flanneld names its device after the VNI: `flannel.1`. */
  device: string;
}

export function flannelVxlan(pool: IPPool, config?: FlannelNetworkConfig): FlannelVxlan {
  const vni = pool.spec.vxlan?.vni ?? config?.vni ?? FLANNEL_VXLAN_DEFAULTS.vni;
  const port = pool.spec.vxlan?.port ?? config?.port ?? FLANNEL_VXLAN_DEFAULTS.port;
  return { vni, port, device: `flannel.${vni}` };
}

/** A pool field that disagrees with Flannel's network config. */
export interface ConfigMismatch {
  /** The pool's field, e.g. `spec.vxlan.vni`. */
  field: string;
  message: string;
}

const BACKEND_OF: Record<string, string> = { VXLAN: "vxlan", HostGW: "host-gw" };

/**
 * The pool against an existing Flannel config: network, subnet length, backend, and the VXLAN VNI
 * and port when the pool sets them (a pool that leaves them unset takes the config's).
 */
export function checkPoolAgainstConfig(pool: IPPool, cfg: FlannelNetworkConfig): ConfigMismatch[] {
  const out: ConfigMismatch[] = [];
  const { spec } = withPoolDefaults(pool);
  const says = (what: string) => `Flannel's network config says ${what}`;
  if (spec.cidr !== cfg.network)
    out.push({
      field: "spec.cidr",
      message: `spec.cidr is ${spec.cidr} but ${says(`Network ${cfg.network}`)}`,
    });
  const blockSize = effectiveBlockSize(pool.spec);
  if (blockSize !== cfg.subnetLen)
    out.push({
      field: "spec.blockSize",
      message: `spec.blockSize is ${blockSize} but ${says(`SubnetLen ${cfg.subnetLen}`)}`,
    });
  if (BACKEND_OF[spec.encapsulation] !== cfg.backendType)
    out.push({
      field: "spec.encapsulation",
      message: `spec.encapsulation is ${spec.encapsulation} but ${says(`Backend.Type ${JSON.stringify(cfg.backendType)}`)}`,
    });
  else if (cfg.backendType === "vxlan") {
    if (pool.spec.vxlan?.vni !== undefined && pool.spec.vxlan.vni !== cfg.vni)
      out.push({
        field: "spec.vxlan.vni",
        message: `spec.vxlan.vni is ${pool.spec.vxlan.vni} but ${says(`VNI ${cfg.vni}`)}`,
      });
    if (pool.spec.vxlan?.port !== undefined && pool.spec.vxlan.port !== cfg.port)
      out.push({
        field: "spec.vxlan.port",
        message: `spec.vxlan.port is ${pool.spec.vxlan.port} but ${says(`Port ${cfg.port}`)}`,
      });
  }
  return out;
}

/**
 * `<prefix>/config` as Weft writes it when there is none: flanneld's own defaults spelled out
 * (SubnetMin skips the first subnet, SubnetMax is the last) and the profile's VNI and port.
 */
export function networkConfigValue(pool: IPPool): string {
  const { spec } = withPoolDefaults(pool);
  const network = parseCidr(spec.cidr);
  const size = 1n << BigInt(32 - spec.blockSize);
  const type = flannelBackendType(pool);
  const vx = flannelVxlan(pool);
  const backend = type === "vxlan" ? { Type: "vxlan", VNI: vx.vni, Port: vx.port } : { Type: type };
  return JSON.stringify({
    Network: spec.cidr,
    SubnetLen: spec.blockSize,
    SubnetMin: formatIP(4, network.base + size),
    SubnetMax: formatIP(4, cidrLast(network) + 1n - size),
    Backend: backend,
  });
}

/** Whether flanneld would hand out this subnet: inside [SubnetMin, SubnetMax] of the config. */
export function subnetInRange(cfg: FlannelNetworkConfig, cidr: string): boolean {
  const c = tryParseCidr(cidr);
  if (c?.family !== 4 || c.prefix !== cfg.subnetLen) return false;
  const ip = formatIP(4, c.base);
  return compareIP(ip, cfg.subnetMin) >= 0 && compareIP(ip, cfg.subnetMax) <= 0;
}

/** `10.5.52.0/24` -> `10.5.52.0-24` (flannel's MakeSubnetKey for IPv4). */
export function subnetKey(cidr: string): string {
  return cidr.replace("/", "-");
}

/** The CIDR a subnets/ key names, or undefined for keys that are not IPv4 subnet leases. */
export function parseSubnetKey(key: string): string | undefined {
  const m = /(?:^|\/)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})-(\d{1,2})$/.exec(key);
  if (!m || parseIPv4(m[1]!) < 0) return undefined;
  const len = Number(m[2]);
  return len <= 32 ? `${m[1]}/${len}` : undefined;
}

export interface LeaseAttrs {
  publicIP: string;
  backendType: "vxlan" | "host-gw";
  /** vxlan only. */
  vni?: number;
  vtepMAC?: string;
}

/**
 * The lease value exactly as flanneld writes it (Go's encoding/json of LeaseAttrs: PublicIPv6 is a
 * nil pointer without omitempty, so it is always there as null; BackendData only for vxlan).
 */
export function leaseValue(a: LeaseAttrs): string {
  const out: Record<string, unknown> = { PublicIP: a.publicIP, PublicIPv6: null, BackendType: a.backendType };
  if (a.backendType === "vxlan") out.BackendData = { VNI: a.vni, VtepMAC: a.vtepMAC };
  return JSON.stringify(out);
}

/** What a lease value says, as far as Weft needs it (any backend type is kept as written). */
export interface ParsedLease {
  publicIP: string;
  backendType: string;
  vni?: number;
  /** Lower case. */
  vtepMAC?: string;
}

/** A lease value written by flanneld or by Weft; undefined when unreadable or without an IPv4 PublicIP. */
export function parseLease(value: string): ParsedLease | undefined {
  let v: {
    PublicIP?: unknown;
    BackendType?: unknown;
    BackendData?: { VNI?: unknown; VtepMAC?: unknown } | null;
  };
  try {
    v = JSON.parse(value) as typeof v;
  } catch {
    return undefined;
  }
  const ip = tryCanonicalAddress(v?.PublicIP);
  if (ip?.family !== 4) return undefined;
  const out: ParsedLease = {
    publicIP: ip.text,
    backendType: typeof v.BackendType === "string" ? v.BackendType : "",
  };
  const data = v.BackendData;
  if (data && typeof data.VNI === "number") out.vni = data.VNI;
  if (data && typeof data.VtepMAC === "string" && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(data.VtepMAC))
    out.vtepMAC = data.VtepMAC.toLowerCase();
  return out;
}

/** PublicIP of a lease value written by flanneld or by Weft; undefined when unreadable. */
export function leasePublicIP(value: string): string | undefined {
  return parseLease(value)?.publicIP;
}

/** Whether `cidr` (a lease's subnet) is one of the pool's blocks. */
export function subnetOfPool(cidr: string, pool: IPPool): boolean {
  const subnet = tryParseCidr(cidr);
  const network = tryParseCidr(pool.spec.cidr);
  if (!subnet || !network || subnet.prefix !== effectiveBlockSize(pool.spec)) return false;
  return cidrContains(network, { family: subnet.family, value: subnet.base });
}

/** What is in etcd under `<prefix>/subnets/`. */
export interface ActualLease {
  cidr: string;
  value: string;
  /** etcd lease id ("0": none, a reservation). */
  lease: string;
  modRevision: string;
}

/** A node Weft's agent runs: this subnet should be leased to it with this value. */
export interface DesiredLease {
  cidr: string;
  node: string;
  value: string;
  publicIP: string;
}

export type LeaseAction =
  | { kind: "create"; cidr: string; node: string; value: string }
  /** Ours, but the node's attributes changed (new underlay IP, MAC). */
  | { kind: "update"; cidr: string; node: string; value: string; modRevision: string }
  /**
   * flanneld's lease of a node whose weft-agent now runs it (flanneld is gone): written once with
   * Weft's value on Weft's etcd lease, so the remaining flanneld nodes see the node's lease renewed.
   */
  | { kind: "takeover"; cidr: string; node: string; value: string; modRevision: string }
  /** Ours, for a subnet no node holds any more. */
  | { kind: "delete"; cidr: string; modRevision: string };

export type LeaseState = "Leased" | "Reserved" | "Conflict";

export interface LeasePlan {
  actions: LeaseAction[];
  /** Per node: how its subnet stands in etcd, and why when it is not leased by Weft. */
  status: Map<string, { cidr: string; state: LeaseState; message: string }>;
}

/**
 * From the nodes weft-agent runs to writes in etcd. Only Weft's own keys (those on one of `ours`,
 * the etcd leases it holds) are ever updated or deleted. A key someone else holds for the same
 * PublicIP is taken over: the node is run by weft-agent now, so flanneld no longer renews it. A
 * reservation (no TTL) is left as it is, and a key naming another PublicIP is a conflict, left
 * alone.
 */
export function planLeases(
  desired: readonly DesiredLease[],
  actual: readonly ActualLease[],
  ours: ReadonlySet<string>,
): LeasePlan {
  const byCidr = new Map(actual.map((a) => [a.cidr, a]));
  const wanted = new Set(desired.map((d) => d.cidr));
  const actions: LeaseAction[] = [];
  const status: LeasePlan["status"] = new Map();
  for (const d of desired) {
    const a = byCidr.get(d.cidr);
    if (!a) {
      actions.push({ kind: "create", cidr: d.cidr, node: d.node, value: d.value });
      status.set(d.node, { cidr: d.cidr, state: "Leased", message: "lease written" });
    } else if (ours.has(a.lease)) {
      if (a.value !== d.value)
        actions.push({
          kind: "update",
          cidr: d.cidr,
          node: d.node,
          value: d.value,
          modRevision: a.modRevision,
        });
      status.set(d.node, { cidr: d.cidr, state: "Leased", message: "lease held" });
    } else if (leasePublicIP(a.value) !== d.publicIP) {
      status.set(d.node, {
        cidr: d.cidr,
        state: "Conflict",
        message: `subnet ${d.cidr} is leased in etcd to PublicIP ${leasePublicIP(a.value) ?? "(unreadable)"}, not to this node's ${d.publicIP}; left alone`,
      });
    } else if (a.lease === "0") {
      status.set(d.node, {
        cidr: d.cidr,
        state: "Reserved",
        message: "a reservation (no TTL) names this node",
      });
    } else {
      actions.push({
        kind: "takeover",
        cidr: d.cidr,
        node: d.node,
        value: d.value,
        modRevision: a.modRevision,
      });
      status.set(d.node, { cidr: d.cidr, state: "Leased", message: "lease taken over from flanneld" });
    }
  }
  for (const a of actual) {
    if (ours.has(a.lease) && !wanted.has(a.cidr))
      actions.push({ kind: "delete", cidr: a.cidr, modRevision: a.modRevision });
  }
  return { actions, status };
}
