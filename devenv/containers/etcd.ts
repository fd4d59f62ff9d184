import type { StartedTestContainer } from "testcontainers";
import { EtcdBase, type EtcdServer, TestEtcd } from "../etcd.js";
import { freePort } from "../ports.js";
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
export class EtcdContainer extends EtcdBase {
  private container: StartedTestContainer | undefined;

  static async start(): Promise<EtcdContainer> {
    return EtcdBase.started(new EtcdContainer(EtcdBase.tempDir(), await freePort(), await freePort()));
  }

  /** Starts a container on the same ports and data; a no-op while one runs. */
  async restart(): Promise<void> {
    if (this.container && (await containerRunning(this.container.getId()))) return;
    const c = await startContainer({
      image: "etcd",
      role: "etcd",
      network: { host: true },
      command: this.args(),
      bindMounts: [{ source: this.dir, target: this.dir }],
    });
    this.container = c;
    await this.waitHealthy("etcd container to answer", async () => {
      if (!(await containerRunning(c.getId())))
        throw new Error(`etcd container exited:\n${await containerLogs(c)}`);
    });
  }

  /** Stops the container (SIGTERM, SIGKILL after graceMs) and removes it; the data stays. */
  async kill(graceMs = 5000): Promise<void> {
    const c = this.container;
    this.container = undefined;
    if (!c) return;
    await c.stop({ timeout: graceMs });
  }
}
