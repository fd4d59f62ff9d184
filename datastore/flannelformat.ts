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
  formatIP,
  parseCidr,
  parseIPv4,
  tryParseCidr,
} from "../net/index.js";

export const DEFAULT_FLANNEL_PREFIX = "/coreos.com/network";
/** Flannel's lease TTL: 24 h. */
export const FLANNEL_LEASE_TTL_SECONDS = 24 * 3600;

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

/**
 * `<prefix>/config`. SubnetMin and SubnetMax are written out as the first and last subnet of the
 * pool, because Weft may hand out the first one too (Flannel's default skips it).
 */
export function networkConfigValue(pool: IPPool): string {
  const { spec } = withPoolDefaults(pool);
  const network = parseCidr(spec.cidr);
  const last = cidrLast(network) + 1n - (1n << BigInt(32 - spec.blockSize));
  const type = flannelBackendType(pool);
  const backend =
    type === "vxlan" ? { Type: "vxlan", VNI: spec.vxlan.vni, Port: spec.vxlan.port } : { Type: type };
  return JSON.stringify({
    Network: spec.cidr,
    SubnetLen: spec.blockSize,
    SubnetMin: formatIP(4, network.base),
    SubnetMax: formatIP(4, last),
    Backend: backend,
  });
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

/** PublicIP of a lease value written by flanneld or by Weft; undefined when unreadable. */
export function leasePublicIP(value: string): string | undefined {
  try {
    const v = JSON.parse(value) as { PublicIP?: unknown };
    return typeof v.PublicIP === "string" ? v.PublicIP : undefined;
  } catch {
    return undefined;
  }
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

/** What Weft's IPAM says: this node holds this subnet and should advertise it so. */
export interface DesiredLease {
  cidr: string;
  node: string;
  value: string;
  publicIP: string;
}

export type LeaseAction =
  | { kind: "create"; cidr: string; node: string; value: string }
  /** Ours, but the node's attributes changed (new underlay IP). */
  | { kind: "update"; cidr: string; node: string; value: string; modRevision: string }
  /** Somebody else's lease (flanneld) for the same node: keep its bytes, renew it on our lease. */
  | { kind: "adopt"; cidr: string; node: string; value: string; modRevision: string }
  /** Ours, for a subnet no node holds any more. */
  | { kind: "delete"; cidr: string; modRevision: string };

export type LeaseState = "Leased" | "Adopted" | "Reserved" | "Conflict";

export interface LeasePlan {
  actions: LeaseAction[];
  /** Per node: how its subnet stands in etcd, and why when it is not leased by Weft. */
  status: Map<string, { cidr: string; state: LeaseState; message: string }>;
}

/**
 * From IPAM's view and etcd's content to writes. Leases Weft did not write are never overwritten:
 * a lease of the same node (same PublicIP) is adopted as it is, a reservation (no TTL) stays as it
 * is, and a lease naming another PublicIP is reported as a conflict and left alone.
 */
export function planLeases(
  desired: DesiredLease[],
  actual: ActualLease[],
  ourLease: string,
  /** cidr -> value of leases adopted earlier: renewed on our lease, still not ours to rewrite. */
  adopted: ReadonlyMap<string, string> = new Map(),
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
    } else if (a.lease === ourLease && adopted.get(d.cidr) === a.value) {
      status.set(d.node, {
        cidr: d.cidr,
        state: "Adopted",
        message: "existing lease kept as it is and renewed",
      });
    } else if (a.lease === ourLease) {
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
      actions.push({ kind: "adopt", cidr: d.cidr, node: d.node, value: a.value, modRevision: a.modRevision });
      status.set(d.node, {
        cidr: d.cidr,
        state: "Adopted",
        message: "existing lease kept as it is and renewed",
      });
    }
  }
  for (const a of actual) {
    if (a.lease === ourLease && !wanted.has(a.cidr))
      actions.push({ kind: "delete", cidr: a.cidr, modRevision: a.modRevision });
  }
  return { actions, status };
}

/**
 * Leases found in etcd that name a known node by PublicIP, in a pool Weft mirrors: the subnet
 * that node must keep. A node named by several leases keeps the first (lowest) subnet.
 */
export function adoptions(
  actual: ActualLease[],
  pool: IPPool,
  nodeByIP: Map<string, string>,
): Array<{ cidr: string; node: string }> {
  const out = new Map<string, string>();
  const address = (cidr: string) => cidr.slice(0, cidr.indexOf("/"));
  const sorted = [...actual].sort((x, y) => compareIP(address(x.cidr), address(y.cidr)));
  for (const a of sorted) {
    if (!subnetOfPool(a.cidr, pool)) continue;
    const ip = leasePublicIP(a.value);
    const node = ip ? nodeByIP.get(ip) : undefined;
    if (node && !out.has(node)) out.set(node, a.cidr);
  }
  return [...out].map(([node, cidr]) => ({ node, cidr }));
}
