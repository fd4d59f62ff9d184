/**
 * Micro-benchmark of the pure IPAM library (no datastore): how much CPU the decisions cost at the
 * scales the design targets. Run: node dist/bench/ipam-pure/main.js
 * Prints one JSON line per scenario; nothing here is asserted (timings belong in bench/, not tests).
 */
import type { IPAMBlockSpec } from "../../api/index.js";
import {
  assignInBlock,
  blockCidrAt,
  candidateBlocks,
  type PoolRef,
  parsePool,
  planAssignment,
  planJoin,
} from "../../ipam/index.js";

function time<T>(fn: () => T): { ms: number; value: T } {
  const t0 = process.hrtime.bigint();
  const value = fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
}

function report(name: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ bench: name, ...fields }));
}

const pools: PoolRef[] = [{ name: "default", spec: { cidr: "10.0.0.0/8" } }];
const pool = parsePool(pools[0]!);

// 1. 100 concurrent requests on one node, committed together: writes and CPU time.
{
  const blocks = new Map<string, IPAMBlockSpec>();
  const { ms, value: writes } = time(() => {
    let todo = Array.from({ length: 100 }, (_, i) => ({ handle: `sandbox${i}.eth0` }));
    let writes = 0;
    while (todo.length > 0) {
      const all = [...blocks.values()];
      const plan = planAssignment({
        family: 4,
        pools,
        node: { name: "node-0" },
        ownBlocks: all.filter((b) => b.affinity === "node-0"),
        claimed: new Set(blocks.keys()),
        count: todo.length,
      });
      if (plan.kind === "error") throw plan.error;
      const r = assignInBlock(plan.block, todo);
      blocks.set(r.spec.cidr, r.spec);
      writes++;
      todo = r.unassigned.map((u) => ({ handle: u.handle }));
    }
    return writes;
  });
  report("group-assign-100", { ms: +ms.toFixed(2), writes, writesPerAddress: writes / 100 });
}

// 2. 5,000 nodes join one after another (the controller's decisions only).
{
  const claimed = new Set<string>();
  const perJoin: number[] = [];
  const { ms } = time(() => {
    for (let n = 0; n < 5000; n++) {
      const t = time(() => planJoin({ pools, node: { name: `node-${n}` }, ownBlocks: [], claimed }));
      perJoin.push(t.ms);
      for (const c of t.value.claims) claimed.add(c.cidr);
    }
  });
  perJoin.sort((a, b) => a - b);
  report("join-5000-nodes", {
    totalMs: +ms.toFixed(1),
    p50Ms: +perJoin[2500]!.toFixed(3),
    p99Ms: +perJoin[4950]!.toFixed(3),
    blocks: claimed.size,
  });
}

// 3. A claim in an almost full /8 (262,143 of 262,144 blocks taken).
{
  const taken = new Set<string>();
  for (let i = 0n; i < 262144n; i++) if (i !== 99999n) taken.add(blockCidrAt(pool, i));
  const { ms, value } = time(() => [...candidateBlocks(pool, "node-x", taken)]);
  report("claim-in-full-8", { ms: +ms.toFixed(1), found: value[0] === blockCidrAt(pool, 99999n) });
}

// 4. An IPv6 /48 with /122 blocks: the first 10,000 candidates.
{
  const v6 = parsePool({ name: "v6", spec: { cidr: "fd00:1::/48" } });
  const { ms } = time(() => {
    let n = 0;
    for (const _ of candidateBlocks(v6, "node-y", [], { limit: 10_000 })) n++;
    return n;
  });
  report("v6-48-candidates-10000", {
    ms: +ms.toFixed(1),
    perCandidateUs: +((ms * 1000) / 10_000).toFixed(2),
  });
}
