import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root, whether running from sources or from dist/. */
export const repoRoot = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find the repository root (package.json)");
    dir = up;
  }
  return dir;
})();

export const toolsBin =
  process.env.WEFT_TOOLS_BIN ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "weft", "bin");

export type ToolName =
  | "kube-apiserver"
  | "kubectl"
  | "etcd"
  | "etcdctl"
  | "cnitool"
  | "helm"
  | "flanneld"
  | RealNodeTool;

/** What only clusters of real kubelets need; `make tools-real-nodes` builds them. */
export type RealNodeTool =
  | "kubelet"
  | "kube-proxy"
  | "kube-scheduler"
  | "kube-controller-manager"
  | "coredns"
  | "agnhost"
  | "pause"
  | "regression-issue-74839"
  | "e2e.test"
  | "ginkgo";

const REAL_NODE_TOOLS = new Set<string>([
  "kubelet",
  "kube-proxy",
  "kube-scheduler",
  "kube-controller-manager",
  "coredns",
  "agnhost",
  "pause",
  "regression-issue-74839",
  "e2e.test",
  "ginkgo",
]);

/** Path of a Go-built tool from the cache; a clear error says how to get it when missing. */
export function tool(name: ToolName): string {
  const path = resolve(toolsBin, name);
  if (!existsSync(path)) {
    const how =
      name === "e2e.test" || name === "ginkgo"
        ? "'make tools-conformance' (devenv/install-tools.sh --conformance)"
        : REAL_NODE_TOOLS.has(name)
          ? "'make tools-real-nodes' (devenv/install-tools.sh --real-nodes)"
          : "'make tools' (devenv/install-tools.sh)";
    throw new Error(`${name} is not built: run ${how} to build it into ${toolsBin}`);
  }
  return path;
}

/**
 * The native CNI plugin (cni/native) built from this checkout's sources: install-tools.sh caches
 * it under the first 16 hex digits of the SHA-256 of weft-cni.c and build.sh, computed the same
 * way here, so a test never runs a binary built from other sources.
 */
export function nativeCniPlugin(): string {
  const dir = join(repoRoot, "cni", "native");
  const hash = createHash("sha256");
  for (const f of ["weft-cni.c", "build.sh"]) hash.update(readFileSync(join(dir, f)));
  const path = resolve(toolsBin, `weft-cni-${hash.digest("hex").slice(0, 16)}`);
  if (!existsSync(path)) {
    throw new Error(
      `the native CNI plugin for this checkout's cni/native is not built: run 'make tools' ` +
        `(devenv/install-tools.sh) to build it into ${path}`,
    );
  }
  return path;
}

/** Path of a system command, or a clear error naming the Debian package that provides it. */
export function systemTool(path: string, debianPackage: string): string {
  if (!existsSync(path))
    throw new Error(`${path} is missing: run 'make tools' or 'apt-get install ${debianPackage}'`);
  return path;
}
