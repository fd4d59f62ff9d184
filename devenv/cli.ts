import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { readState, startControlPlane, stopControlPlane } from "./controlplane.js";
import { alive } from "./procs.js";
import { repoRoot } from "./tools.js";

/** `make cluster-up` / `make cluster-down`: a control plane that outlives the command, in .weft/cluster. */
const dir = join(repoRoot, ".weft", "cluster");

async function main(cmd: string | undefined): Promise<void> {
  const existing = readState(dir);
  if (cmd === "up") {
    if (existing && alive(existing.apiserverPid) && alive(existing.etcdPid)) {
      console.log(`control plane already running at ${existing.server}`);
    } else {
      if (existing) await stopControlPlane(existing);
      mkdirSync(dir, { recursive: true });
      const state = await startControlPlane({ dir });
      console.log(`control plane running at ${state.server} (etcd ${state.etcdEndpoint}); logs in ${dir}`);
    }
    console.log(`export KUBECONFIG=${join(dir, "kubeconfig")}`);
  } else if (cmd === "down") {
    if (existing) await stopControlPlane(existing);
    else if (existsSync(dir)) console.log("no state file; nothing running");
    console.log("control plane stopped");
  } else {
    console.error("usage: cli.js up|down");
    process.exitCode = 2;
  }
}

main(process.argv[2]).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
