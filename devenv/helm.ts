import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot, tool } from "./tools.js";

const execFileP = promisify(execFile);

export const chartDir = join(repoRoot, "charts", "weft");

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

/**
 * `helm template` of the chart (charts/weft unless `chart` names a copy); throws with helm's
 * message when it fails. No --kube-version: install-tools.sh builds helm with its Kubernetes
 * version stamped in, as helm's own release builds are, so this fails if that is ever lost.
 */
export async function helmTemplate(
  release: string,
  namespace: string,
  values: Record<string, string | number | boolean> = {},
  extra: string[] = [],
  chart = chartDir,
): Promise<string> {
  const r = await helm(["template", release, chart, "--namespace", namespace, ...setArgs(values), ...extra]);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return r.stdout;
}
