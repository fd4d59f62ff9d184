import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StartedTestContainer } from "testcontainers";
import { waitFor } from "../procs.js";
import { containerLogs, startContainer } from "./start.js";

/**
 * FRR (Debian's package, in the locally built image) as a BGP router inside a network namespace
 * the test made: the container joins that namespace, so FRR sees exactly its links and addresses,
 * and zebra installs what it learns into that namespace's kernel.
 */
export interface FrrRouter {
  /** The container's id on the run's engine. */
  readonly id: string;
  readonly name: string;
  readonly netns: string;
  /** Runs vtysh commands in order (`vtysh -c A -c B`); stdout. */
  vtysh(...commands: string[]): Promise<string>;
  /** One `show ... json` command, parsed. */
  vtyshJson<T>(command: string): Promise<T>;
  stop(): Promise<void>;
}

/** Starts FRR with `config` (an frr.conf) in network namespace `netns`; resolves once bgpd answers. */
export async function startFrr(opts: { netns: string; config: string }): Promise<FrrRouter> {
  const dir = mkdtempSync(join(tmpdir(), `weft-frr-${process.pid}-`));
  const conf = join(dir, "frr.conf");
  writeFileSync(conf, opts.config.endsWith("\n") ? opts.config : `${opts.config}\n`, { mode: 0o644 });
  let container: StartedTestContainer;
  try {
    container = await startContainer({
      image: "frr",
      role: "frr",
      network: { netns: opts.netns },
      bindMounts: [{ source: conf, target: "/etc/frr/frr.conf", mode: "ro" }],
      // FRR's daemons refuse to start without these (zebra programs the namespace's kernel)
      capabilities: ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"],
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const vtysh = async (...commands: string[]) => {
    const r = await container.exec(["vtysh", ...commands.flatMap((c) => ["-c", c])]);
    if (r.exitCode !== 0)
      throw new Error(`vtysh ${commands.join("; ")}: exit ${r.exitCode}: ${r.output.trim()}`);
    return r.stdout;
  };
  const router: FrrRouter = {
    id: container.getId(),
    name: container.getName().replace(/^\//, ""),
    netns: opts.netns,
    vtysh,
    vtyshJson: async <T>(command: string) => JSON.parse(await vtysh(command)) as T,
    stop: async () => {
      await container.stop({ timeout: 5000 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor("FRR's bgpd to answer vtysh", () => router.vtyshJson("show bgp summary json"), 60_000, 250);
  } catch (err) {
    const logs = await containerLogs(container);
    await router.stop();
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
  return router;
}
