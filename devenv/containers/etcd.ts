import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StartedTestContainer } from "testcontainers";
import {
  type EtcdCerts,
  type EtcdClientConfig,
  type EtcdServer,
  etcdArgs,
  etcdctlFlags,
  etcdEnv,
  makeEtcdCerts,
  runEtcdctl,
  TestEtcd,
} from "../etcd.js";
import { freePort } from "../ports.js";
import { waitFor } from "../procs.js";
import { containersMode } from "./mode.js";
import { containerLogs, containerRunning, startContainer } from "./start.js";

/**
 * A test's etcd: a container from the locally built etcd image when containers are on (the
 * default), the local binary when WEFT_CONTAINERS=off. Both speak TLS with client certificates
 * on free 127.0.0.1 ports and keep their data in a directory of the test's own.
 */
export function startTestEtcd(): Promise<EtcdServer> {
  return containersMode() === "on" ? EtcdContainer.start() : TestEtcd.start();
}

/**
 * etcd in a container on the machine's network (so it listens on 127.0.0.1 exactly like the
 * binary), its directory bind-mounted at the same path: certificates and data survive the
 * container, so kill() + restart() is a new container on the same data and ports.
 */
export class EtcdContainer implements EtcdServer {
  readonly client: EtcdClientConfig;
  private container: StartedTestContainer | undefined;

  private constructor(
    readonly dir: string,
    private readonly certs: EtcdCerts,
    private readonly clientPort: number,
    private readonly peerPort: number,
  ) {
    this.client = {
      endpoints: [`https://127.0.0.1:${clientPort}`],
      ca: certs.ca,
      cert: certs.cert,
      key: certs.key,
    };
  }

  static async start(): Promise<EtcdContainer> {
    const dir = mkdtempSync(join(tmpdir(), `weft-etcd-${process.pid}-`));
    const e = new EtcdContainer(dir, makeEtcdCerts(dir), await freePort(), await freePort());
    try {
      await e.restart();
    } catch (err) {
      await e.stop();
      throw err;
    }
    return e;
  }

  get port(): number {
    return this.clientPort;
  }

  env(prefix?: string): Record<string, string> {
    return etcdEnv(this.client, prefix);
  }

  /** Starts a container on the same ports and data; a no-op while one runs. */
  async restart(): Promise<void> {
    if (this.container && (await containerRunning(this.container.getId()))) return;
    const c = await startContainer({
      image: "etcd",
      role: "etcd",
      network: { host: true },
      command: etcdArgs(this.dir, this.certs, this.clientPort, this.peerPort),
      bindMounts: [{ source: this.dir, target: this.dir }],
    });
    this.container = c;
    await waitFor(
      "etcd container to answer",
      async () => {
        if (!(await containerRunning(c.getId())))
          throw new Error(`etcd container exited:\n${await containerLogs(c)}`);
        await this.etcdctl(["endpoint", "health"]);
        return true;
      },
      30_000,
      100,
    );
  }

  /** Stops the container (SIGTERM, SIGKILL after graceMs) and removes it; the data stays. */
  async kill(graceMs = 5000): Promise<void> {
    const c = this.container;
    this.container = undefined;
    if (!c) return;
    await c.stop({ timeout: graceMs });
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  etcdctlFlags(): string[] {
    return etcdctlFlags(this.client);
  }

  etcdctl(args: string[]): Promise<string> {
    return runEtcdctl(this.client, args);
  }
}
