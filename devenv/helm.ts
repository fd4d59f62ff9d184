import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot, tool } from "./tools.js";

const execFileP = promisify(execFile);

export const chartDir = join(repoRoot, "charts", "weft");

/**
 * Kubernetes version `helm template` renders for. A helm built with `go install` reports v1.20
 * (its version is not stamped), below the chart's kubeVersion; the test apiserver is 1.32.
 */
export const KUBE_VERSION = "1.32.0";

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the devenv-built helm; never throws on a non-zero exit (callers look at the result). */
export async function helm(args: string[], env: NodeJS.ProcessEnv = {}): Promise<HelmResult> {
  try {
    const { stdout, stderr } = await execFileP(tool("helm"), args, {
      maxBuffer: 64 * 1024 * 1024,
      // helm keeps caches and repositories config under HOME; a private one per process
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(process.env.TMPDIR ?? "/tmp", `weft-helm-${process.pid}`, "cache"),
        HELM_CONFIG_HOME: join(process.env.TMPDIR ?? "/tmp", `weft-helm-${process.pid}`, "config"),
        HELM_DATA_HOME: join(process.env.TMPDIR ?? "/tmp", `weft-helm-${process.pid}`, "data"),
        ...env,
      },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === "number" ? e.code : 1,
      stdout: e.stdout ?? "",
      stderr: e.stderr ?? e.message,
    };
  }
}

/** `--set k=v` pairs from an object of dotted keys. */
export function setArgs(values: Record<string, string | number | boolean>): string[] {
  return Object.entries(values).flatMap(([k, v]) => [
    typeof v === "string" ? "--set-string" : "--set",
    `${k}=${v}`,
  ]);
}

/** `helm template` of the chart (charts/weft unless `chart` names a copy); throws with helm's message when it fails. */
export async function helmTemplate(
  release: string,
  namespace: string,
  values: Record<string, string | number | boolean> = {},
  extra: string[] = [],
  chart = chartDir,
): Promise<string> {
  const r = await helm([
    "template",
    release,
    chart,
    "--namespace",
    namespace,
    "--kube-version",
    KUBE_VERSION,
    ...setArgs(values),
    ...extra,
  ]);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return r.stdout;
}
