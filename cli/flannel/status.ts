import { parseArgs } from "node:util";
import {
  DEFAULT_FLANNEL_PREFIX,
  EtcdStore,
  flannelOwnerKey,
  parseLease,
  parseSubnetKey,
  prefixEnd,
} from "../../datastore/index.js";
import { type Command, UsageError } from "../command.js";
import { table } from "../table.js";

/** One key under `<prefix>/subnets/` as etcd holds it. */
export interface SubnetKey {
  cidr: string;
  value: string;
  /** etcd lease id, decimal ("0": none, a reservation). */
  lease: string;
}

export interface FlannelStatusRow {
  subnet: string;
  publicIP: string;
  /** The Node whose underlay address is the PublicIP, if Weft knows it. */
  node: string;
  /** Who writes the key: weft-agent (on Weft's etcd lease), flanneld (on another), reservation. */
  runBy: "weft-agent" | "flanneld" | "reservation";
  vtepMAC: string;
  /** etcd lease id in hex, as etcdctl prints it. */
  lease: string;
  /** Seconds the lease has left; a key whose lease ran out is gone from etcd. */
  ttl: string;
}

/**
 * Rows of `weftctl flannel status`, pure: who runs each subnet's node (the key's etcd lease
 * against the one Weft records as its own) and how long its lease has left.
 */
export function flannelStatusRows(
  keys: readonly SubnetKey[],
  weftLease: string | undefined,
  ttlOf: ReadonlyMap<string, number>,
  nodeOfIP: ReadonlyMap<string, string>,
): FlannelStatusRow[] {
  return keys.map((k) => {
    const l = parseLease(k.value);
    const runBy = k.lease === "0" ? "reservation" : k.lease === weftLease ? "weft-agent" : "flanneld";
    const ttl = ttlOf.get(k.lease);
    return {
      subnet: k.cidr,
      publicIP: l?.publicIP ?? "?",
      node: (l && nodeOfIP.get(l.publicIP)) ?? "-",
      runBy,
      vtepMAC: l?.vtepMAC ?? "-",
      lease: k.lease === "0" ? "-" : BigInt(k.lease).toString(16),
      ttl: k.lease === "0" ? "never expires" : ttl === undefined || ttl < 0 ? "expired" : `${ttl}s`,
    };
  });
}

/** `weftctl flannel status`: the subnets of a Flannel network Weft shares, and who runs each. */
export const flannelStatusCommand: Command = {
  path: ["flannel", "status"],
  summary: "subnets of the Flannel network: which nodes flanneld runs, and whether their leases live",
  usage: "weftctl --datastore etcd flannel status [--prefix /coreos.com/network] [-o text|json]",
  async run(ctx, args) {
    const { values } = parseArgs({
      args,
      options: {
        prefix: { type: "string", default: DEFAULT_FLANNEL_PREFIX },
        output: { type: "string", short: "o", default: "text" },
      },
    });
    if (!["text", "json"].includes(values.output as string)) throw new UsageError("-o must be text or json");
    const store = ctx.store();
    if (!(store instanceof EtcdStore))
      throw new UsageError(
        "Flannel's leases live in etcd: use --datastore etcd (WEFT_ETCD_* as for weft-agent)",
      );
    const prefix = (values.prefix as string).replace(/\/+$/, "");
    const kv = store.client.kv;
    const start = Buffer.from(`${prefix}/subnets/`);
    const res = await kv.range({ key: start, range_end: prefixEnd(start) });
    const keys: SubnetKey[] = [];
    for (const k of res.kvs) {
      const cidr = parseSubnetKey(k.key.toString());
      if (cidr) keys.push({ cidr, value: k.value.toString(), lease: String(k.lease) });
    }
    const owner = (await kv.range({ key: Buffer.from(flannelOwnerKey(store.prefix, prefix)) })).kvs[0];
    const weftLease = owner ? String(owner.lease) : undefined;
    const ttlOf = new Map<string, number>();
    for (const id of new Set(keys.map((k) => k.lease).filter((l) => l !== "0")))
      ttlOf.set(id, Number((await store.client.leaseClient.leaseTimeToLive({ ID: id })).TTL));
    const nodeOfIP = new Map<string, string>();
    for (const ri of (await store.list("RouteIntent")).items) nodeOfIP.set(ri.spec.underlayIP, ri.spec.node);
    const rows = flannelStatusRows(keys, weftLease, ttlOf, nodeOfIP);
    if (values.output === "json") {
      ctx.out(JSON.stringify(rows, null, 2));
      return 0;
    }
    const config = (await kv.range({ key: Buffer.from(`${prefix}/config`) })).kvs[0]?.value.toString();
    ctx.out(`${prefix}/config: ${config ?? "(none)"}`);
    if (rows.length === 0) {
      ctx.out(`no subnet leases under ${prefix}/subnets/`);
      return 0;
    }
    ctx.out(
      table(
        ["SUBNET", "PUBLIC-IP", "NODE", "RUN-BY", "VTEP-MAC", "ETCD-LEASE", "TTL"],
        rows.map((r) => [r.subnet, r.publicIP, r.node, r.runBy, r.vtepMAC, r.lease, r.ttl]),
      ),
    );
    return 0;
  },
};
