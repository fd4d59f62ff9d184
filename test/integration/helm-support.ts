import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestCluster } from "../../devenv/cluster.js";
import { chartDir, type HelmResult, helm, setArgs } from "../ship/chart-support.js";

let seq = 0;

/** A release name and namespace no other test (or parallel test file) uses. */
export function uniqueRelease(prefix: string): { release: string; namespace: string } {
  seq++;
  const release = `${prefix}${process.pid.toString(36)}${seq}`;
  return { release, namespace: `ns-${release}` };
}

/**
 * Values every test release sets: a pool of its own that no node takes addresses from, so that a
 * controller of another test file never hands out addresses from it.
 */
export function isolatedPool(release: string, cidr = "10.200.0.0/16"): Record<string, string | boolean> {
  return {
    "defaultPool.name": `pool-${release}`,
    "defaultPool.cidr": cidr,
    "defaultPool.disabled": true,
    "defaultPool.nodeSelector.matchLabels.weft-test/release": release,
  };
}

export class HelmCluster {
  private readonly dir = mkdtempSync(join(tmpdir(), `weft-helm-kc-${process.pid}-`));

  constructor(readonly cluster: TestCluster) {}

  /** helm with this cluster's kubeconfig. */
  run(args: string[]): Promise<HelmResult> {
    return helm(["--kubeconfig", this.cluster.kubeconfig, ...args]);
  }

  async install(
    release: string,
    namespace: string,
    values: Record<string, string | number | boolean>,
    verb: "install" | "upgrade" = "install",
  ): Promise<HelmResult> {
    const extra = verb === "install" ? ["--create-namespace"] : [];
    return this.run([verb, release, chartDir, "--namespace", namespace, ...extra, ...setArgs(values)]);
  }

  async mustInstall(
    release: string,
    namespace: string,
    values: Record<string, string | number | boolean>,
    verb: "install" | "upgrade" = "install",
  ): Promise<string> {
    const r = await this.install(release, namespace, values, verb);
    if (r.code !== 0) throw new Error(`helm ${verb} ${release} failed: ${r.stderr}`);
    return r.stdout;
  }

  /** Best effort, for after(): a release that is not there is fine. */
  async uninstall(release: string, namespace: string): Promise<void> {
    await this.run(["uninstall", release, "--namespace", namespace, "--ignore-not-found"]);
  }

  /** A kubeconfig file for a bearer token (TokenRequest), removed with cleanup(). */
  kubeconfigFile(name: string, content: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  }

  cleanup(): void {
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}
