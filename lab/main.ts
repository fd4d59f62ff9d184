import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  applyCrds,
  kubectl,
  readState,
  startControlPlane,
  stopControlPlane,
} from "../test/harness/controlplane.js";
import { alive } from "../test/harness/procs.js";
import { repoRoot } from "../test/harness/tools.js";

/**
 * `make lab`: a local Weft cluster network on this machine. Everything it starts is recorded in
 * .weft/lab/ so that `make lab-down` can remove exactly that, by pid and by name.
 */
const labDir = join(repoRoot, ".weft", "lab");
const cpDir = join(labDir, "controlplane");
const kubeconfigLink = join(labDir, "kubeconfig");

const MODES = ["vxlan", "host-gw", "bgp", "bgp-rr"] as const;
type Mode = (typeof MODES)[number];

function poolManifest(mode: Mode): string {
  const encapsulation = { vxlan: "VXLAN", "host-gw": "HostGW", bgp: "BGP", "bgp-rr": "BGP" }[mode];
  return readFileSync(join(repoRoot, "lab", "pool.yaml"), "utf8").replace(
    /encapsulation: \w+/,
    `encapsulation: ${encapsulation}`,
  );
}

async function up(mode: Mode): Promise<void> {
  mkdirSync(labDir, { recursive: true });
  let cp = readState(cpDir);
  if (cp && alive(cp.apiserverPid) && alive(cp.etcdPid)) {
    console.log(`lab control plane already running at ${cp.server}`);
    await applyCrds(cp.kubeconfig);
  } else {
    if (cp) await stopControlPlane(cp);
    mkdirSync(cpDir, { recursive: true });
    console.log("starting kube-apiserver and etcd ...");
    cp = await startControlPlane({ dir: cpDir });
    console.log(`control plane running at ${cp.server}`);
  }
  writeFileSync(kubeconfigLink, readFileSync(cp.kubeconfig));
  await kubectl(kubeconfigLink, ["apply", "-f", "-"], poolManifest(mode));
  const pools = await kubectl(kubeconfigLink, ["get", "ippools"]);
  console.log(`\n${pools}`);
  console.log(`Weft lab is up (mode ${mode}). Try:
  export KUBECONFIG=${kubeconfigLink}
  kubectl get weft
  kubectl explain ippool.spec
  kubectl get ippool default -o yaml
Stop it with: make lab-down`);
}

async function down(): Promise<void> {
  const cp = readState(cpDir);
  if (cp) await stopControlPlane(cp);
  if (existsSync(kubeconfigLink)) writeFileSync(kubeconfigLink, "");
  console.log("lab stopped; every process it started is gone");
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      mode: { type: "string", default: "vxlan" },
      datastore: { type: "string", default: "kubernetes" },
    },
  });
  const mode = values.mode as Mode;
  if (!MODES.includes(mode)) throw new Error(`unknown MODE ${mode}; choose one of ${MODES.join(", ")}`);
  if (values.datastore !== "kubernetes")
    throw new Error(`DATASTORE=${values.datastore} is not supported yet`);
  if (positionals[0] === "up") await up(mode);
  else if (positionals[0] === "down") await down();
  else throw new Error("usage: lab/main.js up|down [--mode vxlan|host-gw|bgp|bgp-rr]");
}

main().catch((err: unknown) => {
  console.error(`lab: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
