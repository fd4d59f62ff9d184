import { execFile } from "node:child_process";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { HOW_TO_FIX } from "./mode.js";

const execFileP = promisify(execFile);

/** Where Weft keeps what it builds (Go binaries in bin/, container images in containers/). */
export const weftCache =
  process.env.WEFT_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "weft");

/**
 * The image store: images built here by buildah, read by every test run's engine as a read-only
 * additional store, so a run never copies or loads them and its own storage can be thrown away.
 */
export const imageStore = join(weftCache, "containers", "storage");

/**
 * Environment that keeps podman and buildah off every registry: pulls go to a proxy on a closed
 * loopback port and fail at once, without a DNS lookup (nothing can be pulled here anyway, and a
 * mistyped image name must not turn into traffic leaving the machine).
 */
export const NO_REGISTRY_ENV: Record<string, string> = {
  HTTP_PROXY: "http://127.0.0.1:9",
  HTTPS_PROXY: "http://127.0.0.1:9",
  http_proxy: "http://127.0.0.1:9",
  https_proxy: "http://127.0.0.1:9",
  NO_PROXY: "",
  no_proxy: "",
};

/** registries.conf of our own: no search registries, so a short name never means a registry. */
export const REGISTRIES_CONF = 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n';

/** Runs a podman/buildah command, with the command and its stderr in the error. */
export async function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { timeoutMs?: number; maxBuffer?: number; cwd?: string } = {},
): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, {
      env,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      timeout: opts.timeoutMs ?? 0,
      maxBuffer: opts.maxBuffer ?? 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") throw new Error(`${cmd} is not installed: ${HOW_TO_FIX}`);
    throw new Error(`${cmd} ${args.join(" ")} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

/** `podman --version` -> "4.3.1"; a clear error when podman is missing. */
export async function podmanVersion(): Promise<string> {
  const out = await run("podman", ["--version"], process.env);
  return out.trim().replace(/^podman version /, "");
}
