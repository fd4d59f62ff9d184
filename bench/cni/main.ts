/**
 * CNI ADD/DEL latency over the same number of pods, in the same run: the plugin the chart installs
 * (the native weft-cni, cni/native) as the headline, the Node.js plugin (its fallback) beside it,
 * both with the agent's CNI server (in-memory assigner), against Debian's bridge + host-local.
 * Also the bare start-up cost of each plugin (VERSION).
 *   node dist/bench/cni/main.js [--pods 200] [--warmup 5]
 * Needs root and the native plugin (make tools). Last line: one JSON object with every side, the
 * ratios and the headline (target: ADD <= 1.5 x bridge + host-local at p50 and at p99).
 */
import { execFile } from "node:child_process";
import { loadavg } from "node:os";
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
const TARGET = 1.5;
const NATIVE = "weft native (chart)";
const NODE = "weft Node.js";
const PEER = "bridge+host-local";

const fx = new CniFixture("wbc", "10.77.0.0/20");
const cleanup = () => fx.close();
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.on(sig, () => void cleanup().finally(() => process.exit(130)));

const pods = (prefix: string) => Array.from({ length: total }, (_, i) => fx.addNetns(`${prefix}${pid}x${i}`));
const load = () => loadavg().map((l) => Math.round(l * 100) / 100);

try {
  await fx.setup();
  const variants = [
    { name: NATIVE, binary: fx.weft, conf: fx.conf(), pods: pods("wbw") },
    { name: NODE, binary: fx.nodePlugin, conf: fx.conf(), pods: pods("wbn") },
    {
      name: PEER,
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
  const loadBefore = load();
  const { stdout } = await run("ip", ["netns", "exec", fx.node, process.execPath, runner, input], {
    env: { PATH: process.env.PATH ?? "" },
    maxBuffer: 64 << 20,
  });
  const loadAfter = load();
  const lat = JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, Record<string, number[]>>;
  const out: Record<string, { add: Summary; del: Summary; start: Summary }> = {};
  for (const [name, l] of Object.entries(lat)) {
    out[name] = { add: summarize(l.add!), del: summarize(l.del!), start: summarize(l.start!) };
  }
  const ref = out[PEER]!;
  const r2 = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const ratios: Record<string, Record<string, number>> = {};
  const f = (x: number) => x.toFixed(1).padStart(7);
  console.log(
    `CNI latency over ${values.pods} pods per plugin (after ${warmup} warm-up), plugins alternating pod by pod, ms; ` +
      `load average ${loadBefore.join(" ")} before, ${loadAfter.join(" ")} after`,
  );
  for (const [name, s] of Object.entries(out)) {
    console.log(
      `${name.padEnd(20)} ADD p50 ${f(s.add.p50)} p99 ${f(s.add.p99)}   DEL p50 ${f(s.del.p50)} p99 ${f(s.del.p99)}   start p50 ${f(s.start.p50)}`,
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
      `  ratio to ${PEER}: ADD p50 ${q.addP50} p99 ${q.addP99}   DEL p50 ${q.delP50} p99 ${q.delP99}   (target ADD <= ${TARGET})`,
    );
  }
  const native = ratios[NATIVE]!;
  const value = Math.max(native.addP50!, native.addP99!);
  console.log(
    `headline: the plugin the chart installs (native), ADD ratio to ${PEER} p50 ${native.addP50} p99 ${native.addP99}: ` +
      `${value <= TARGET ? "meets" : "MISSES"} the target <= ${TARGET} (Node.js plugin: p50 ${ratios[NODE]!.addP50} p99 ${ratios[NODE]!.addP99})`,
  );
  console.log(
    "timed span, per ADD/DEL: from spawning the plugin (network configuration on its stdin, CNI_* in its " +
      "environment, inside the node's network namespace, as a runtime execs it) until it has exited and its " +
      "stdout is read. For weft this includes the plugin's start, the HTTP round trip over the agent's unix " +
      "socket and the agent's whole work: address assignment (in-memory assigner: no apiserver write), veth " +
      "pair, addresses, routes and neighbor entry in the pod and the node. For bridge + host-local: bridge " +
      "exec'ing host-local (file-backed IPAM), bridge, veth pair, addresses and routes. start = VERSION only.",
  );
  console.log(
    JSON.stringify({
      bench: "cni",
      pods: Number(values.pods),
      loadavg: { before: loadBefore, after: loadAfter },
      results: out,
      ratio: ratios,
      target: TARGET,
      headline: {
        metric:
          "CNI ADD latency of the plugin the chart installs (native), worse of p50 and p99, as a ratio to the peer",
        value,
        target: TARGET,
        unit: "ratio",
        peer: "Debian containernetworking-plugins bridge + host-local, same run",
      },
    }),
  );
} finally {
  await cleanup();
}
