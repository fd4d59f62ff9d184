import { Gauge, register } from "prom-client";
import type { IPAMBlock, IPPool } from "../../api/index.js";
import type { Assigner } from "../../ipam/client/index.js";
import { blockAddressCount, isIpamError, parsePool, poolUsage } from "../../ipam/index.js";
import type { Runnable } from "../../runtime/index.js";
import type { ControllerContext } from "../context.js";

/** What the gauges are computed from when Prometheus scrapes: the controller's caches. */
export interface IpamMetricsSource {
  pools(): readonly IPPool[];
  blocks(): Iterable<IPAMBlock>;
}

const sources = new Set<IpamMetricsSource>();

function gauge(name: string, help: string, labelNames: string[], collect: (g: Gauge<string>) => void) {
  const existing = register.getSingleMetric(name) as Gauge<string> | undefined;
  if (existing) return existing;
  return new Gauge({
    name,
    help,
    labelNames,
    collect() {
      this.reset();
      collect(this);
    },
  });
}

/** Free addresses are floats here: an IPv6 pool's count exceeds 2^53 and Prometheus keeps doubles anyway. */
function perPool(g: Gauge<string>, pick: (u: ReturnType<typeof poolUsage>) => number) {
  for (const src of sources) {
    const blocks = [...src.blocks()].map((b) => b.spec);
    for (const p of src.pools()) {
      try {
        const u = poolUsage(parsePool({ name: p.metadata.name, spec: p.spec }), blocks);
        g.inc({ pool: p.metadata.name }, pick(u));
      } catch (e) {
        if (!isIpamError(e)) throw e;
      }
    }
  }
}

function perNode(g: Gauge<string>, pick: (b: IPAMBlock) => number) {
  for (const src of sources)
    for (const b of src.blocks()) if (b.spec.affinity) g.inc({ node: b.spec.affinity }, pick(b));
}

/**
 * Per-pool and per-node gauges of address use, computed at scrape time from the caches (no work
 * between scrapes), and registered once per process however many controllers it runs.
 */
export function registerIpamMetrics(source: IpamMetricsSource): () => void {
  gauge("weft_ipam_pool_addresses_used", "Addresses in use per IPPool (pods and VTEPs)", ["pool"], (g) =>
    perPool(g, (u) => u.addressesUsed),
  );
  gauge(
    "weft_ipam_pool_addresses_free",
    "Addresses not in use per IPPool, in claimed blocks or not",
    ["pool"],
    (g) => perPool(g, (u) => Number(u.addressesFree)),
  );
  gauge("weft_ipam_pool_blocks_used", "Blocks claimed by nodes per IPPool", ["pool"], (g) =>
    perPool(g, (u) => u.blocksUsed),
  );
  gauge("weft_ipam_pool_blocks_free", "Blocks no node holds per IPPool", ["pool"], (g) =>
    perPool(g, (u) => Number(u.blocksTotal - BigInt(u.blocksUsed))),
  );
  gauge("weft_ipam_node_addresses_used", "Addresses in use in each node's blocks", ["node"], (g) =>
    perNode(g, (b) => b.spec.allocations.length),
  );
  gauge("weft_ipam_node_addresses_free", "Free addresses in each node's blocks", ["node"], (g) =>
    perNode(g, (b) => blockAddressCount(b.spec) - b.spec.allocations.length),
  );
  gauge("weft_ipam_node_blocks", "Blocks each node holds", ["node"], (g) => perNode(g, () => 1));
  sources.add(source);
  return () => sources.delete(source);
}

/** The gauges over a controller's caches while it runs (the pools it handles and their blocks). */
export function ipamMetrics(
  ctx: ControllerContext,
  assigner: Assigner,
  poolFilter?: (name: string) => boolean,
): Runnable {
  const ok = (name: string) => !poolFilter || poolFilter(name);
  let unregister: (() => void) | undefined;
  return {
    name: "ipam-metrics",
    start() {
      unregister = registerIpamMetrics({
        pools: () => ctx.informers.pools.list().filter((p) => ok(p.metadata.name)),
        blocks: () => [...assigner.cache.all()].filter((b) => ok(b.spec.pool)),
      });
    },
    stop() {
      unregister?.();
    },
  };
}
