import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { STATE_ENV } from "./harness/cluster.js";
import {
  type ControlPlaneState,
  reapLeftovers,
  startControlPlane,
  stopControlPlane,
} from "./harness/controlplane.js";
import { repoRoot } from "./harness/tools.js";

/**
 * Runs the test suites with node's test runner in one invocation (one summary for CI). Suites that
 * need the real apiserver share one control plane, started here and stopped here by pid, also
 * when the run fails or is interrupted.
 */
const SUITES = ["unit", "integration", "dataplane", "e2e"] as const;
const NEEDS_CLUSTER = new Set(["integration", "dataplane", "e2e"]);

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

async function main(): Promise<number> {
  // Arguments are suite names (unit, integration, ...) or single compiled test files.
  const wanted = process.argv.slice(2);
  const distTest = join(repoRoot, "dist", "test");
  const explicit = wanted.filter((w) => w.endsWith(".js")).map((f) => resolve(f));
  const named = wanted.filter((w) => !w.endsWith(".js"));
  const suites = wanted.length ? named : [...SUITES];
  const files = [...suites.flatMap((s) => testFiles(join(distTest, s))), ...explicit];
  for (const f of explicit) {
    const suite = relative(distTest, f).split("/")[0];
    if (suite && !suites.includes(suite)) suites.push(suite);
  }
  if (files.length === 0) {
    console.error(
      `no test files found for ${suites.join(", ")} under ${relative(repoRoot, distTest)} (run 'make build')`,
    );
    return 1;
  }

  let cp: ControlPlaneState | undefined;
  const teardown = async () => {
    if (cp) {
      const c = cp;
      cp = undefined;
      await stopControlPlane(c);
    }
  };
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
    }
    const env = { ...process.env, ...(cp ? { [STATE_ENV]: join(cp.dir, "state.json") } : {}) };
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
