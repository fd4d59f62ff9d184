import { type ChildProcess, spawn } from "node:child_process";
import { openSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { freePort } from "../devenv/index.js";

export interface BenchController {
  child: ChildProcess;
  /** http://127.0.0.1:<port> of its /readyz and /metrics. */
  base: string;
}

/** weft-controller (dist/controllers/main.js) for a benchmark: no leader election, warnings only. */
export async function spawnController(
  kubeconfig: string,
  logFile: string,
  extraArgs: string[] = [],
): Promise<BenchController> {
  const port = await freePort();
  const main = fileURLToPath(new URL("../controllers/main.js", import.meta.url));
  const out = openSync(logFile, "a");
  const child = spawn(
    process.execPath,
    [
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
