import assert from "node:assert/strict";
import { after, it } from "node:test";
import { audit } from "../../ipam/audit.js";
import { parseCidr, parseIP } from "../../ipam/index.js";
import { allocationsByIp, blocksOf, readHeld, setup, WorkerFleet } from "./ipam-support.js";

/**
 * Several allocator processes against one pool on the real apiserver: nothing but the block
 * objects' compare-and-swap keeps them apart, so this is where a duplicate would show.
 */
const PROCESSES = 8;
const PER_PROCESS = 500;
const NODES = 20;
const CIDR = "10.202.0.0/16";

const env = setup();
const fleet = new WorkerFleet(env, `ipamcc${process.pid}`, NODES);
const { workers } = fleet;

after(() => fleet.remove());

it(`${PROCESSES} processes x ${PER_PROCESS} assignments over ${NODES} nodes: no duplicates, blocks agree`, async () => {
  await fleet.start(CIDR, PROCESSES, { count: PER_PROCESS, inflight: 50 });
  const codes = await Promise.all(workers.map((w) => w.exited));
  for (const [i, c] of codes.entries()) assert.equal(c, 0, `worker ${i} failed: ${workers[i]!.stderr()}`);

  const held = workers.flatMap((w) => readHeld(w.out));
  assert.equal(held.length, PROCESSES * PER_PROCESS, "every assignment was answered");
  const ips = new Set(held.map((h) => h.ip));
  assert.equal(ips.size, held.length, "zero duplicates across processes");
  const c = parseCidr(CIDR);
  for (const h of held) {
    const a = parseIP(h.ip);
    assert.ok(a.family === 4 && a.value >= c.base && a.value < c.base + (1n << 16n), `${h.ip} is in ${CIDR}`);
  }

  const blocks = await blocksOf(env.store, fleet.pool);
  const stored = allocationsByIp(blocks);
  assert.equal(stored.size, held.length, "the blocks hold exactly what the processes hold");
  for (const h of held)
    assert.equal(stored.get(h.ip), h.handle, `${h.ip} belongs to ${h.handle} in the block`);
  for (const b of blocks) {
    const mine = held.filter((h) => h.block === b.metadata.name);
    for (const h of mine) assert.equal(b.spec.affinity, h.node, `${h.ip} came from its node's own block`);
  }
  const report = audit({ pools: [], blocks, nodeExists: () => true, podExists: () => true });
  assert.deepEqual(report.duplicates, [], "no overlapping blocks, no address held twice");
  assert.deepEqual(report.invalidBlocks, []);
});
