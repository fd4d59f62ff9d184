import { join } from "node:path";
import { parseArgs } from "node:util";
import { repoRoot } from "../tools.js";
import { destroyRealCluster, RealCluster, readClusterState } from "./cluster.js";

/**
 * A real-node cluster that outlives the command, in .weft/realnodes (for looking around by hand):
 *   node dist/devenv/realnodes/cli.js up [--nodes N] [--reference-cni]
 *   node dist/devenv/realnodes/cli.js down
 */
const dir = join(repoRoot, ".weft", "realnodes");

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      nodes: { type: "string", default: "2" },
      "reference-cni": { type: "boolean", default: false },
    },
  });
  const existing = readClusterState(dir);
  if (existing) await destroyRealCluster(existing);
  if (positionals[0] === "down") {
    console.log("real-node cluster removed");
    return;
  }
  if (positionals[0] !== "up") throw new Error("usage: cli.js up|down [--nodes N] [--reference-cni]");
  const cluster = await RealCluster.start({
    id: "weft-rn",
    dir,
    nodes: Number(values.nodes),
    referenceCni: values["reference-cni"] ?? false,
  });
  console.log(JSON.stringify({ timings: cluster.timings, memoryMiB: cluster.nodeMemory() }, null, 2));
  console.log(`export KUBECONFIG=${cluster.kubeconfig}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
