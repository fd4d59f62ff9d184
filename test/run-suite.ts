import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { STATE_ENV } from "../devenv/cluster.js";
import { type RunEngine, startRunEngine } from "../devenv/containers/run.js";
import {
  type ControlPlaneState,
  reapLeftovers,
  startControlPlane,
  stopControlPlane,
} from "../devenv/controlplane.js";
import { repoRoot } from "../devenv/tools.js";

/**
 * Runs the test suites with node's test runner in one invocation (one summary for CI). Suites that
 * need the real apiserver share one control plane, started here and stopped here by pid, also
 * when the run fails or is interrupted.
 *
 * Suites: `unit` is every test that sits beside the code it tests (pure, no root, no apiserver);
 * `ship` checks what is shipped (Dockerfile, chart, manifests); `integration` runs against the real
 * apiserver; `dataplane` needs root and network namespaces; `realnodes` starts clusters of real
 * kubelets of its own (their apiserver needs its flags at the first start, so not the shared one).
 */
const SUITES = ["unit", "ship", "integration", "dataplane", "realnodes"] as const;
const NEEDS_CLUSTER = new Set<string>(["integration", "dataplane"]);
/** Compiled top-level folders that hold no tests beside code. */
const NOT_UNIT = new Set(["test", "lab", "bench"]);

function testFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return testFiles(path);
      return name.endsWith(".test.js") ? [path] : [];
    })
    .sort();
}

function suiteFiles(dist: string, suite: string): string[] {
  if (suite !== "unit") return testFiles(join(dist, "test", suite));
  return readdirSync(dist)
    .filter((name) => !NOT_UNIT.has(name) && statSync(join(dist, name)).isDirectory())
    .flatMap((name) => testFiles(join(dist, name)));
}

function suiteOf(dist: string, file: string): string {
  const [top, sub] = relative(dist, file).split("/");
  return top === "test" && sub ? sub : "unit";
}

async function main(): Promise<number> {
  // Arguments are suite names (unit, integration, ...) or single compiled test files.
  const wanted = process.argv.slice(2);
  const dist = join(repoRoot, "dist");
  const unknown = wanted.filter((w) => !w.endsWith(".js") && !(SUITES as readonly string[]).includes(w));
  if (unknown.length) {
    console.error(`unknown suite(s) ${unknown.join(", ")}: the suites are ${SUITES.join(", ")}`);
    return 2;
  }
  const explicit = wanted.filter((w) => w.endsWith(".js")).map((f) => resolve(f));
  const named = wanted.filter((w) => !w.endsWith(".js"));
  const suites: string[] = wanted.length ? named : [...SUITES];
  const files = [...suites.flatMap((s) => suiteFiles(dist, s)), ...explicit];
  for (const f of explicit) {
    const suite = suiteOf(dist, f);
    if (!suites.includes(suite)) suites.push(suite);
  }
  if (files.length === 0) {
    console.error(
      `no test files found for ${suites.join(", ")} under ${relative(repoRoot, dist)} (run 'make build')`,
    );
    return 1;
  }

  let cp: ControlPlaneState | undefined;
  let engine: RunEngine | undefined;
  // One teardown, whoever asks first (a signal, or the run ending because the signal also
  // ended the test process): both wait for it, so the process never exits halfway through.
  let tearing: Promise<void> | undefined;
  const teardown = () =>
    (tearing ??= (async () => {
      await engine?.teardown();
      if (cp) await stopControlPlane(cp);
    })());
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      void teardown().finally(() => process.exit(130));
    });
  }

  try {
    if (suites.some((s) => NEEDS_CLUSTER.has(s))) {
      const reaped = await reapLeftovers();
      if (reaped) console.log(`# reaped ${reaped} control plane(s) left by an earlier run`);
      const t0 = Date.now();
      cp = await startControlPlane({ ownerPid: process.pid });
      console.log(`# control plane up at ${cp.server} in ${Date.now() - t0} ms`);
      // Suites beside unit start their throwaway servers (etcd, FRR) as containers.
      engine = await startRunEngine(process.pid);
    }
    const env = {
      ...process.env,
      ...(cp ? { [STATE_ENV]: join(cp.dir, "state.json") } : {}),
      ...engine?.env,
    };
    const concurrency = process.env.WEFT_TEST_CONCURRENCY ?? "2";
    const args = [
      "--enable-source-maps",
      "--test",
      `--test-concurrency=${concurrency}`,
      "--test-timeout=600000",
    ];
    if (process.env.WEFT_TEST_REPORTER) args.push(`--test-reporter=${process.env.WEFT_TEST_REPORTER}`);
    const child = spawn(process.execPath, [...args, ...files], { stdio: "inherit", env, cwd: repoRoot });
    return await new Promise<number>((resolveCode) =>
      child.on("exit", (code, signal) => resolveCode(code ?? (signal ? 1 : 0))),
    );
  } finally {
    await teardown();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
