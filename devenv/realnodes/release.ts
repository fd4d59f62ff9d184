import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import type { BuiltImage } from "../images/build.js";
import { tool } from "../tools.js";
import type { RealCluster } from "./cluster.js";
import type { RealNodeMode } from "./workload.js";

const execFileP = promisify(execFile);

/**
 * Weft as a Helm release that changes over time, the way operators run it: installed from one
 * chart and image, upgraded to another (CRDs first, as the chart's README says: Helm never
 * upgrades them), or re-rendered with a changed value. Each call waits for the rollout.
 */

export const RELEASE = { name: "weft", namespace: "kube-system" } as const;

/** The chart values that point a release at a locally built image (nothing is pulled). */
export function imageValues(image: BuiltImage): Record<string, string> {
  const at = image.ref.lastIndexOf(":");
  return {
    "image.repository": image.ref.slice(0, at),
    "image.tag": image.ref.slice(at + 1),
    "image.pullPolicy": "Never",
  };
}

function setArgs(values: Record<string, string>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ["--set-string", `${k}=${v}`]);
}

async function helm(cluster: RealCluster, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(tool("helm"), ["--kubeconfig", cluster.kubeconfig, ...args], {
      maxBuffer: 16 << 20,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`helm ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** Waits for the agents' DaemonSet and the controller's Deployment to finish rolling out. */
export async function waitRollout(cluster: RealCluster, timeoutMs = 300_000): Promise<void> {
  const timeout = `--timeout=${Math.round(timeoutMs / 1000)}s`;
  const ns = ["-n", RELEASE.namespace];
  await cluster.kubectl([...ns, "rollout", "status", "daemonset/weft-agent", timeout]);
  await cluster.kubectl([...ns, "rollout", "status", "deployment/weft-controller", timeout]);
}

export interface ReleaseSpec {
  /** A chart directory (charts/weft of some checkout). */
  chart: string;
  image: BuiltImage;
  mode: RealNodeMode;
  /** More values (strings), e.g. logLevel. */
  values?: Record<string, string>;
}

/** `helm install` of a chart and image; waits for the agents and the controller. */
export async function installRelease(cluster: RealCluster, spec: ReleaseSpec): Promise<void> {
  await helm(cluster, [
    ...["install", RELEASE.name, spec.chart, "--namespace", RELEASE.namespace],
    ...setArgs({ ...imageValues(spec.image), mode: spec.mode, ...spec.values }),
  ]);
  await waitRollout(cluster);
}

/**
 * `helm upgrade` to a chart and image: the chart's CRDs are applied first (server-side), then the
 * release is upgraded with the values given here (all of them, as a GitOps tool passes them: no
 * --reuse-values, which would hide the new chart's defaults), and the rollouts are awaited.
 */
export async function upgradeRelease(cluster: RealCluster, spec: ReleaseSpec): Promise<void> {
  await cluster.kubectl(["apply", "--server-side", "--force-conflicts", "-f", join(spec.chart, "crds")]);
  await helm(cluster, [
    ...["upgrade", RELEASE.name, spec.chart, "--namespace", RELEASE.namespace],
    ...setArgs({ ...imageValues(spec.image), mode: spec.mode, ...spec.values }),
  ]);
  await waitRollout(cluster);
}

/** The revision of the agents' DaemonSet template (changes when every agent is re-rendered). */
export async function agentTemplateGeneration(cluster: RealCluster): Promise<number> {
  const out = await cluster.kubectl([
    ...["-n", RELEASE.namespace, "get", "daemonset", "weft-agent", "-o", "jsonpath={.metadata.generation}"],
  ]);
  return Number(out.trim());
}
