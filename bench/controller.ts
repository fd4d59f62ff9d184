import { type ChildProcess, spawn } from "node:child_process";
import { openSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { freePort } from "../devenv/index.js";

export interface BenchController {
  child: ChildProcess;
  /** http://127.0.0.1:<port> of its /readyz and /metrics. */
  base: string;
}

/**
 * weft-controller (dist/controllers/main.js) for a benchmark: no leader election, warnings only.
 * WEFT_BENCH_CPU_PROF=DIR writes its CPU profile there when it exits (node --cpu-prof), to find
 * where a slow run spends its time. WEFT_BENCH_CONTROLLER=PATH runs another build's
 * controllers/main.js instead (the before of a change, measured under the same conditions).
 */
export async function spawnController(
  kubeconfig: string,
  logFile: string,
  extraArgs: string[] = [],
): Promise<BenchController> {
  const port = await freePort();
  const main =
    process.env.WEFT_BENCH_CONTROLLER || fileURLToPath(new URL("../controllers/main.js", import.meta.url));
  const out = openSync(logFile, "a");
  const profDir = process.env.WEFT_BENCH_CPU_PROF;
  const child = spawn(
    process.execPath,
    [
      ...(profDir ? ["--cpu-prof", "--cpu-prof-dir", profDir] : []),
      main,
      "--kubeconfig",
      kubeconfig,
      "--leader-elect",
      "false",
      "--health-port",
      String(port),
      "--health-host",
      "127.0.0.1",
      ...extraArgs,
    ],
    { stdio: ["ignore", out, out], env: { ...process.env, WEFT_LOG_LEVEL: "warn" } },
  );
  return { child, base: `http://127.0.0.1:${port}` };
}
