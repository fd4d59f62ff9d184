import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RealCluster, reapRealClusters } from "../../devenv/realnodes/cluster.js";
import { parseSkipList, runE2E, summaryText } from "../../devenv/realnodes/e2e.js";
import { installWeft, REAL_NODE_MODES, type RealNodeMode } from "../../devenv/realnodes/workload.js";
import { repoRoot } from "../../devenv/tools.js";

/**
 * `make conformance`: Kubernetes' own [sig-network] specs against Weft on real nodes. Brings up
 * a cluster of real kubelets (3 nodes by default), installs Weft with its chart from the image
 * built here, runs every [sig-network] spec but those in test/conformance/skip-list.txt (each with
 * its reason), prints ginkgo's summary and tears the cluster down. The full log and JUnit report
 * stay in .weft/conformance/<time>/; the exit code is ginkgo's.
 */
export const SKIP_LIST = join(repoRoot, "test", "conformance", "skip-list.txt");

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      nodes: { type: "string", default: "3" },
      mode: { type: "string", default: "vxlan" },
      parallel: { type: "string", default: "3" },
      focus: { type: "string", multiple: true },
      timeout: { type: "string", default: "4h" },
    },
  });
  const mode = values.mode as RealNodeMode;
  if (!REAL_NODE_MODES.includes(mode)) throw new Error(`MODE ${mode}: one of ${REAL_NODE_MODES.join(", ")}`);
  const nodes = Number(values.nodes);
  const skip = parseSkipList(readFileSync(SKIP_LIST, "utf8"));
  const focus = values.focus?.length ? values.focus : ["\\[sig-network\\]"];
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const reportDir = join(repoRoot, ".weft", "conformance", stamp);
  mkdirSync(reportDir, { recursive: true });

  const reaped = await reapRealClusters();
  if (reaped) console.log(`reaped ${reaped} real-node cluster(s) left by an earlier run`);
  const t0 = Date.now();
  console.log(`conformance: a control plane and ${nodes} real nodes, Weft (mode ${mode}) from its chart ...`);
  const cluster = await RealCluster.start({ id: "weft-cf", nodes, ownerPid: process.pid });
  let stopping = false;
  const abort = new AbortController();
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // ginkgo first: its specs would otherwise go on against a cluster being torn down, and outlive us
    abort.abort();
    await cluster.destroy().catch((err: unknown) => console.error(String(err)));
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
    process.on(sig, () => void stop().finally(() => process.exit(130)));
  try {
    await installWeft(cluster, mode);
    await cluster.waitNodesReady();
    const setup = (Date.now() - t0) / 1000;
    console.log(
      `cluster and Weft ready in ${setup.toFixed(0)} s; running [sig-network] (${skip.length} skip entries, ${values.parallel} processes); log: ${join(reportDir, "e2e.log")}`,
    );
    const result = await runE2E(
      {
        kubeconfig: cluster.kubeconfig,
        focus,
        skip,
        parallel: Number(values.parallel),
        reportDir,
        nodes,
        timeout: values.timeout ?? "4h",
        signal: abort.signal,
      },
      (line) => {
        // progress: one line per finished spec keeps a long run readable
        if (/^\s*(•|\[FAIL\]|\[PANICKED\]|S \[SKIPPED\])/.test(line) || /^\s*\[FAILED\]/.test(line))
          console.log(line.slice(0, 300));
      },
    );
    console.log(`\n${summaryText(result.output)}`);
    const s = result.summary;
    const record = {
      date: new Date().toISOString().slice(0, 10),
      mode,
      nodes,
      focus,
      skipEntries: skip.length,
      setupSeconds: setup,
      ...(s ?? { error: "ginkgo printed no summary" }),
      exitCode: result.exitCode,
      loadavg: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "),
    };
    writeFileSync(join(reportDir, "result.json"), `${JSON.stringify(record, null, 2)}\n`);
    console.log(`conformance: ${JSON.stringify(record)}`);
    return result.exitCode;
  } catch (err) {
    console.error(cluster.logTails());
    throw err;
  } finally {
    await stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`conformance: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
