import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, it } from "node:test";
import { fileURLToPath } from "node:url";
import { waitFor } from "../../devenv/procs.js";
import type { AuditReport } from "../../ipam/audit.js";
import { isReservedHandle } from "../../ipam/index.js";
import {
  allocationsByIp,
  blocksOf,
  deletePods,
  ensureNamespace,
  killWorker,
  readHeld,
  setup,
  startController,
  WorkerFleet,
} from "./ipam-support.js";

/**
 * Allocator processes die by SIGKILL in the middle of their work and their pods go away without a
 * CNI DEL: `weftctl ipam check` must report every address they leaked, and the controller's GC
 * must free exactly those after the grace period and nothing that a living pod holds.
 */
const PROCESSES = 8;
// 500 per process, as in ipam-concurrency, with a Pod per address: about 3.5 min on the 2-core
// machine while another suite runs (it ran past the 600 s timeout before API connections were reused).
const PER_PROCESS = 500;
const NODES = 20;
const GRACE_MS = 2000;

const env = setup();
const { cluster, kc, store, core } = env;
const fleet = new WorkerFleet(env, `gcchaos${process.pid}`, NODES);
const { pool, workers } = fleet;
const ns = `${fleet.tag}-pods`;
const weftctl = fileURLToPath(new URL("../../cli/main.js", import.meta.url));

function check(): Promise<{ code: number; report: AuditReport }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [weftctl, "--kubeconfig", cluster.kubeconfig, "ipam", "check", "-o", "json", "--pool", pool],
      { maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        try {
          resolve({ code: typeof code === "number" ? code : 1, report: JSON.parse(stdout) as AuditReport });
        } catch {
          reject(new Error(`weftctl ipam check failed (${code}): ${stderr}`));
        }
      },
    );
  });
}

after(async () => {
  fleet.kill();
  await deletePods(core, ns).catch(() => undefined);
  await fleet.remove();
});

it("SIGKILLed allocators: check reports every leak, GC frees exactly those and nothing in use", async () => {
  await ensureNamespace(core, ns);
  await fleet.start("10.203.0.0/16", PROCESSES, { count: PER_PROCESS, inflight: 25, namespace: ns });
  const victims = workers.slice(0, PROCESSES / 2);
  const survivors = workers.slice(PROCESSES / 2);
  // Mid-run: each victim holds some addresses and has more in flight.
  await waitFor(
    "victims under way",
    () => {
      const dead = workers.find((w) => w.exitCode() !== null);
      if (dead) throw new Error(`worker ${dead.id} ended early: ${dead.stderr()}`);
      return victims.every((w) => readHeld(w.out).length >= PER_PROCESS / 10) ? true : undefined;
    },
    300_000,
  );
  for (const w of victims) killWorker(w);
  const codes = await Promise.all(survivors.map((w) => w.exited));
  for (const [i, c] of codes.entries()) assert.equal(c, 0, `survivor ${i} failed: ${survivors[i]!.stderr()}`);
  for (const w of victims) assert.notEqual(await w.exited, 0, "victim was killed before finishing");

  // The victims' pods are deleted; nobody told IPAM (no CNI DEL ran).
  await deletePods(core, ns, `weft.dev/test-worker in (${victims.map((w) => w.id).join(",")})`);
  const victimHandle = new RegExp(`^${pool}-w(${victims.map((w) => w.id).join("|")})-`);
  const victimHeld = victims.flatMap((w) => readHeld(w.out));
  const survivorHeld = survivors.flatMap((w) => readHeld(w.out));
  assert.equal(survivorHeld.length, survivors.length * PER_PROCESS);
  assert.ok(victimHeld.length > 0 && victimHeld.length < victims.length * PER_PROCESS);

  const { code, report } = await check();
  assert.equal(code, 1, "check exits 1 when it finds leaks");
  const leaked = new Set(report.leaked.map((l) => l.handle));
  for (const h of victimHeld) assert.ok(leaked.has(h.handle), `check reports ${h.ip} (${h.handle})`);
  for (const l of report.leaked)
    assert.match(l.handle, victimHandle, `${l.ip} reported leaked but its pod lives`);
  // Addresses committed to a block but never reported back by the killed process are leaks too.
  const blocks = await blocksOf(store, pool);
  const inBlocks = allocationsByIp(blocks);
  const victimInBlocks = [...inBlocks.values()].filter((h) => victimHandle.test(h));
  assert.equal(
    leaked.size,
    victimInBlocks.length,
    "every victim allocation in the blocks is reported, nothing else",
  );

  const ctl = await startController(kc, store, { poolFilter: (n) => n === pool, gcGraceMs: GRACE_MS });
  try {
    const after = await waitFor(
      "GC released the leaked addresses",
      async () => {
        // The controller also reserves every node's VTEP in the pool; those are not pods'.
        const m = allocationsByIp(await blocksOf(store, pool));
        for (const [ip, h] of m) if (isReservedHandle(h)) m.delete(ip);
        return [...m.values()].some((h) => victimHandle.test(h)) ? undefined : m;
      },
      60_000,
      250,
    );
    const held = new Map(survivorHeld.map((h) => [h.ip, h.handle]));
    const extra = [...after].filter(([ip, h]) => held.get(ip) !== h).slice(0, 5);
    assert.equal(
      after.size,
      survivorHeld.length,
      `blocks hold what survivors hold; extra: ${JSON.stringify(extra)}`,
    );
    for (const h of survivorHeld)
      assert.equal(after.get(h.ip), h.handle, `${h.ip} still belongs to ${h.handle}`);
  } finally {
    await ctl.stop();
  }
  const again = await check();
  assert.deepEqual(again.report.leaked, []);
});
