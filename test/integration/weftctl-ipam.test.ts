import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { API_VERSION, type BlockAllocation, blockName } from "../../api/index.js";
import type { AuditReport } from "../../ipam/audit.js";
import { vtepHandle } from "../../ipam/index.js";
import {
  createNode,
  createPod,
  createPool,
  deleteNode,
  ensureNamespace,
  removePools,
  setup,
} from "./ipam-support.js";

const { cluster, store, core } = setup();
const tag = `weftctl${process.pid}`;
const pool = `${tag}-pool`;
const clean = `${tag}-clean`;
const ns = `${tag}-pods`;
const node = `${tag}-node`;
const ghost = `${tag}-ghost`;
const gone = `${tag}-gone`;
const reserving = `${tag}-res`;
const stray = `${tag}-stray`;
const dir = mkdtempSync(join(tmpdir(), `${tag}-`));
const weftctl = fileURLToPath(new URL("../../cli/main.js", import.meta.url));

function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [weftctl, ...args],
      { env: { ...process.env, ...env }, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? Number((err as { code?: number }).code ?? 1) : 0;
        resolve({ code, out: stdout, err: stderr });
      },
    );
  });
}

async function block(cidr: string, p: string, affinity: string, allocations: BlockAllocation[]) {
  const sequence = Math.max(0, ...allocations.map((a) => a.sequence));
  await store.create("IPAMBlock", {
    apiVersion: API_VERSION,
    kind: "IPAMBlock",
    metadata: { name: blockName(cidr) },
    spec: { cidr, pool: p, affinity, allocations, sequence },
  });
}

before(async () => {
  await ensureNamespace(core, ns);
  await createNode(core, node);
  await createPod(core, ns, "alive");
  await createPool(store, pool, { cidr: "10.205.0.0/24", blockSize: 28 });
  await createPool(store, clean, { cidr: "10.205.1.0/24", blockSize: 28 });
  await block("10.205.0.0/28", pool, node, [
    { ordinal: 0, handle: vtepHandle(node), sequence: 1 },
    { ordinal: 1, handle: "alive.eth0", namespace: ns, pod: "alive", sequence: 2 },
    { ordinal: 2, handle: "dead.eth0", namespace: ns, pod: "dead", sequence: 3 },
  ]);
  await block("10.205.0.16/28", pool, ghost, [{ ordinal: 0, handle: vtepHandle(ghost), sequence: 1 }]);
  await block("10.205.0.32/28", pool, gone, [
    { ordinal: 5, handle: "alive2.eth0", namespace: ns, pod: "alive", sequence: 1 },
  ]);
  // Overlaps the first block: the same addresses in two blocks.
  await block("10.205.0.0/29", pool, node, [{ ordinal: 7, handle: "other.eth0", sequence: 1 }]);
  await block("10.205.1.0/28", clean, node, [
    { ordinal: 0, handle: "alive3.eth0", namespace: ns, pod: "alive", sequence: 1 },
  ]);
  // In the clean pool: 10.205.1.0 (held by a pod) and four more addresses of its block.
  for (const [name, reservedCIDRs] of [
    [reserving, ["10.205.1.0", "10.205.1.4/30"]],
    [stray, ["198.51.100.0/24"]],
  ] as const)
    await store.create("IPReservation", {
      apiVersion: API_VERSION,
      kind: "IPReservation",
      metadata: { name },
      spec: { reservedCIDRs: [...reservedCIDRs] },
    });
});

after(async () => {
  await deleteNode(core, node);
  await core.deleteNamespacedPod({ namespace: ns, name: "alive" }).catch(() => undefined);
  for (const r of [reserving, stray]) await store.delete("IPReservation", r).catch(() => undefined);
  await removePools(store, [pool, clean]);
  rmSync(dir, { recursive: true, force: true });
});

describe("weftctl ipam", () => {
  it("check finds leaks, orphan blocks, duplicates and blocks of deleted nodes, and exits 1", async () => {
    const r = await run(["--kubeconfig", cluster.kubeconfig, "ipam", "check", "-o", "json", "--pool", pool]);
    assert.equal(r.code, 1, r.err);
    const report = JSON.parse(r.out) as AuditReport;
    assert.deepEqual(report.leaked.map((l) => l.handle).sort(), ["dead.eth0", vtepHandle(ghost)].sort());
    const dead = report.leaked.find((l) => l.handle === "dead.eth0")!;
    assert.equal(dead.ip, "10.205.0.2");
    assert.equal(dead.sequence, 3);
    assert.match(dead.reason, /pod .*dead does not exist/);
    assert.deepEqual(
      report.orphanBlocks.map((b) => b.cidr),
      ["10.205.0.16/28"],
    );
    assert.deepEqual(
      report.deletedNodeBlocks.map((b) => b.cidr),
      ["10.205.0.32/28"],
    );
    assert.ok(
      report.duplicates.some((d) =>
        /10\.205\.0\.0\/28.*10\.205\.0\.0\/29|10\.205\.0\.0\/29.*10\.205\.0\.0\/28/.test(d.what),
      ),
    );

    const text = await run(["ipam", "check", "--pool", pool], { KUBECONFIG: cluster.kubeconfig });
    assert.equal(text.code, 1, text.err);
    assert.match(text.out, /Leaked addresses \(2\)/);
    assert.match(text.out, /10\.205\.0\.2 +dead\.eth0/);
    assert.match(text.out, /Orphan blocks \(1\)/);
    assert.match(text.out, /Blocks of deleted nodes \(1\)/);
    assert.match(text.out, /Duplicates/);
  });

  it("check exits 0 on a clean pool: reserved addresses in use are listed, reservations of other pools left out", async () => {
    const r = await run(["--kubeconfig", cluster.kubeconfig, "ipam", "check", "--pool", clean]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /0 problem/);
    assert.match(r.out, new RegExp(`10\\.205\\.1\\.0 +${reserving} +alive3\\.eth0 +${ns}/alive +${node}`));
    assert.doesNotMatch(r.out, new RegExp(stray), "a reservation outside the chosen pools is not theirs");
  });

  it("check reports a reservation outside every pool", async () => {
    const r = await run(["--kubeconfig", cluster.kubeconfig, "ipam", "check", "-o", "json"]);
    const report = JSON.parse(r.out) as AuditReport;
    const mine = report.reservationProblems.filter((p) => p.reservation === stray);
    assert.equal(mine.length, 1, JSON.stringify(report.reservationProblems));
    assert.match(mine[0]!.field, /spec\.reservedCIDRs\[0\]/);
    assert.match(mine[0]!.reason, /198\.51\.100\.0\/24.*outside every IPPool/);
    assert.equal(r.code, 1);
  });

  it("release --from-report frees exactly the leaked addresses, guarded by sequence numbers", async () => {
    const r = await run(["--kubeconfig", cluster.kubeconfig, "ipam", "check", "-o", "json", "--pool", pool]);
    const report = JSON.parse(r.out) as AuditReport;
    // The ghost VTEP was freed and handed out again after the report: its sequence moved on.
    const ghostBlock = blockName("10.205.0.16/28");
    await store.mutate("IPAMBlock", ghostBlock, (b) => {
      b.spec.sequence = 9;
      b.spec.allocations = [{ ordinal: 0, handle: vtepHandle(ghost), sequence: 9 }];
      return b;
    });
    const file = join(dir, "report.json");
    writeFileSync(file, JSON.stringify(report));
    const rel = await run(["--kubeconfig", cluster.kubeconfig, "ipam", "release", "--from-report", file]);
    assert.equal(rel.code, 0, rel.err);
    assert.match(rel.out, /released 1 of 2/);
    assert.match(rel.out, /skipped .*vtep/);
    const b1 = await store.get("IPAMBlock", blockName("10.205.0.0/28"));
    assert.deepEqual(
      b1!.spec.allocations.map((a) => a.handle),
      [vtepHandle(node), "alive.eth0"],
      "the leaked address is gone, the live ones stay",
    );
    const g = await store.get("IPAMBlock", ghostBlock);
    assert.equal(g!.spec.allocations.length, 1, "the reused address was not freed by the stale report");
    const again = await run(["--kubeconfig", cluster.kubeconfig, "ipam", "release", "--from-report", file]);
    assert.match(again.out, /released 0 of 2/, "releasing twice changes nothing");
  });

  it("show prints pools and blocks per node with utilisation", async () => {
    const r = await run(["--kubeconfig", cluster.kubeconfig, "ipam", "show"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`${pool} +10\\.205\\.0\\.0/24 +Blocks`));
    assert.match(r.out, new RegExp(`${node} +\\d+ +\\d+/\\d+`));
    assert.match(r.out, new RegExp(`${gone} \\(deleted\\)`));
    const j = await run(["--kubeconfig", cluster.kubeconfig, "ipam", "show", "-o", "json", "--blocks"]);
    const parsed = JSON.parse(j.out) as { pools: Array<{ name: string; blocksUsed: number }> };
    assert.equal(
      parsed.pools.find((p) => p.name === pool)?.blocksUsed,
      3,
      "the overlapping /29 is no block of the /28 pool",
    );
    // reserved addresses marked per pool, per block and per reservation
    const shown = JSON.parse(j.out) as {
      pools: Array<{ name: string; reserved: string }>;
      blocks: Array<{ cidr: string; reserved: number }>;
      reservations: Array<{ name: string; reserved: string; inUse: number; outsidePools: string[] }>;
    };
    assert.equal(shown.pools.find((p) => p.name === clean)?.reserved, "5");
    assert.equal(shown.blocks.find((b) => b.cidr === "10.205.1.0/28")?.reserved, 5);
    assert.deepEqual(
      shown.reservations.filter((x) => x.name === reserving || x.name === stray),
      [
        {
          name: reserving,
          entries: ["10.205.1.0", "10.205.1.4/30"],
          reserved: "5",
          inUse: 1,
          outsidePools: [],
        },
        {
          name: stray,
          entries: ["198.51.100.0/24"],
          reserved: "0",
          inUse: 0,
          outsidePools: ["198.51.100.0/24"],
        },
      ],
    );
    assert.match(r.out, new RegExp(`${reserving} +10\\.205\\.1\\.0,10\\.205\\.1\\.4/30 +5 +1 +-`));
  });

  it("answers an unknown command with usage and exit code 2", async () => {
    const r = await run(["ipam", "frobnicate"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command/);
    assert.match(r.err, /ipam check/);
  });
});
