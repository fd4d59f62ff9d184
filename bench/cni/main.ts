/**
 * CNI ADD/DEL latency over the same number of pods, in the same run: weft-cni (node bundle) and
 * weft-shim (sh + curl), both with the agent's CNI server (in-memory assigner), against Debian's
 * bridge + host-local. Also the bare start-up cost of each plugin (VERSION).
 *   node dist/bench/cni/main.js [--pods 200] [--warmup 5]
 * Needs root. Last line: one JSON object with all sides and the ratios (target: ADD <= 2.0).
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { CniFixture, REFERENCE_PLUGINS, repoRoot } from "../../devenv/index.js";
import { type Summary, summarize } from "./stats.js";

const run = promisify(execFile);
const { values } = parseArgs({
  options: { pods: { type: "string", default: "200" }, warmup: { type: "string", default: "5" } },
});
const warmup = Number(values.warmup);
const total = Number(values.pods) + warmup;
const pid = process.pid;

const fx = new CniFixture("wbc", "10.77.0.0/20");
const cleanup = () => fx.close();
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.on(sig, () => void cleanup().finally(() => process.exit(130)));

const pods = (prefix: string) => Array.from({ length: total }, (_, i) => fx.addNetns(`${prefix}${pid}x${i}`));

try {
  await fx.setup();
  const variants = [
    { name: "weft-cni", binary: fx.weft, conf: fx.conf(), pods: pods("wbw") },
    { name: "weft-shim", binary: join(fx.binDir, "weft-shim"), conf: fx.conf(), pods: pods("wbs") },
    {
      name: "bridge+host-local",
      binary: join(REFERENCE_PLUGINS, "bridge"),
      conf: {
        cniVersion: "1.0.0",
        name: `ref-${pid}`,
        type: "bridge",
        bridge: `wbr${pid}`,
        isGateway: true,
        ipMasq: false,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet: "10.78.0.0/20" }]],
          dataDir: join(fx.dir, "host-local"),
        },
      },
      pods: pods("wbr"),
    },
  ];
  const runner = join(repoRoot, "dist", "bench", "cni", "runner.js");
  const input = JSON.stringify({ variants, warmup, tag: `b${pid}` });
  const { stdout } = await run("ip", ["netns", "exec", fx.node, process.execPath, runner, input], {
    env: { PATH: process.env.PATH ?? "" },
    maxBuffer: 64 << 20,
  });
  const lat = JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, Record<string, number[]>>;
  const out: Record<string, { add: Summary; del: Summary; start: Summary }> = {};
  for (const [name, l] of Object.entries(lat)) {
    out[name] = { add: summarize(l.add!), del: summarize(l.del!), start: summarize(l.start!) };
  }
  const ref = out["bridge+host-local"]!;
  const r2 = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const ratios: Record<string, Record<string, number>> = {};
  const f = (x: number) => x.toFixed(1).padStart(7);
  console.log(
    `CNI latency over ${values.pods} pods (after ${warmup} warm-up), exec'd with stdin + CNI_* env, ms`,
  );
  for (const [name, s] of Object.entries(out)) {
    console.log(
      `${name.padEnd(18)} ADD p50 ${f(s.add.p50)} p99 ${f(s.add.p99)}   DEL p50 ${f(s.del.p50)} p99 ${f(s.del.p99)}   start p50 ${f(s.start.p50)}`,
    );
    if (s === ref) continue;
    ratios[name] = {
      addP50: r2(s.add.p50, ref.add.p50),
      addP99: r2(s.add.p99, ref.add.p99),
      delP50: r2(s.del.p50, ref.del.p50),
      delP99: r2(s.del.p99, ref.del.p99),
    };
    const q = ratios[name]!;
    console.log(
      `  ratio to reference: ADD p50 ${q.addP50} p99 ${q.addP99}   DEL p50 ${q.delP50} p99 ${q.delP99}   (target ADD <= 2.0, aim 1.0)`,
    );
  }
  console.log(
    JSON.stringify({ bench: "cni", pods: Number(values.pods), results: out, ratio: ratios, target: 2.0 }),
  );
} finally {
  await cleanup();
}
