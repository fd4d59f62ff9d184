import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { clientCert, makeCA, serverExt, signLeaf } from "./certs.js";
import { freePort } from "./ports.js";
import { alive, startDetached, stopPid, waitFor } from "./procs.js";
import { tool } from "./tools.js";

const execFileP = promisify(execFile);

/** What a client needs to reach a test etcd (the same names as WEFT_ETCD_* for the components). */
export interface EtcdClientConfig {
  endpoints: string[];
  ca: string;
  cert: string;
  key: string;
}

/** A CA, etcd's serving certificate for 127.0.0.1 and one client certificate. */
export function makeEtcdCerts(
  dir: string,
): { ca: string; serverCert: string; serverKey: string } & EtcdClientConfig {
  makeCA(dir, "weft-etcd-test-ca");
  signLeaf(dir, "server", "/CN=weft-etcd", serverExt(["IP:127.0.0.1", "DNS:localhost"]));
  clientCert(dir, "client", "/CN=weft-controller");
  return {
    endpoints: [],
    ca: join(dir, "ca.crt"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    cert: join(dir, "client.crt"),
    key: join(dir, "client.key"),
  };
}

export type EtcdCerts = ReturnType<typeof makeEtcdCerts>;

/**
 * What tests use of their etcd, whether it runs as a local binary (TestEtcd) or in a container
 * (devenv/containers/etcd.ts): the same flags, ports on 127.0.0.1 and client certificates.
 */
export interface EtcdServer {
  readonly dir: string;
  readonly client: EtcdClientConfig;
  readonly port: number;
  env(prefix?: string): Record<string, string>;
  restart(): Promise<void>;
  kill(graceMs?: number): Promise<void>;
  stop(): Promise<void>;
  etcdctlFlags(): string[];
  etcdctl(args: string[]): Promise<string>;
}

/** etcd's command line: TLS with client certificates on 127.0.0.1, data under `dir`. */
export function etcdArgs(dir: string, certs: EtcdCerts, clientPort: number, peerPort: number): string[] {
  const url = `https://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return [
    "--name=weft-etcd-test",
    `--data-dir=${join(dir, "data")}`,
    `--listen-client-urls=${url}`,
    `--advertise-client-urls=${url}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=weft-etcd-test=${peer}`,
    "--client-cert-auth",
    `--trusted-ca-file=${certs.ca}`,
    `--cert-file=${certs.serverCert}`,
    `--key-file=${certs.serverKey}`,
    "--unsafe-no-fsync",
    "--log-level=warn",
  ];
}

/** The environment weft-controller and weft-agent read in etcd mode. */
export function etcdEnv(client: EtcdClientConfig, prefix?: string): Record<string, string> {
  return {
    WEFT_DATASTORE: "etcd",
    WEFT_ETCD_ENDPOINTS: client.endpoints.join(","),
    WEFT_ETCD_CA: client.ca,
    WEFT_ETCD_CERT: client.cert,
    WEFT_ETCD_KEY: client.key,
    ...(prefix ? { WEFT_ETCD_PREFIX: prefix } : {}),
  };
}

/** etcdctl's connection flags (endpoints and the client certificate). */
export function etcdctlFlags(client: EtcdClientConfig): string[] {
  return [
    `--endpoints=${client.endpoints.join(",")}`,
    `--cacert=${client.ca}`,
    `--cert=${client.cert}`,
    `--key=${client.key}`,
  ];
}

/** Runs the host's etcdctl (API v3) with the client certificate; returns stdout. */
export async function runEtcdctl(client: EtcdClientConfig, args: string[]): Promise<string> {
  const { stdout } = await execFileP(
    tool("etcdctl"),
    [...etcdctlFlags(client), "--command-timeout=5s", ...args],
    { env: { ...process.env, ETCDCTL_API: "3" }, maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

/**
 * What every test etcd shares, however it runs: a directory with its certificates and data, two
 * free 127.0.0.1 ports, and the client side (environment, etcdctl). kill() + restart() keeps the
 * directory and ports; stop() also removes the directory.
 */
export abstract class EtcdBase implements EtcdServer {
  readonly client: EtcdClientConfig;
  protected readonly certs: EtcdCerts;

  protected constructor(
    readonly dir: string,
    protected readonly clientPort: number,
    protected readonly peerPort: number,
  ) {
    this.certs = makeEtcdCerts(dir);
    this.client = {
      endpoints: [`https://127.0.0.1:${clientPort}`],
      ca: this.certs.ca,
      cert: this.certs.cert,
      key: this.certs.key,
    };
  }

  /** A new temporary directory for one etcd. */
  protected static tempDir(): string {
    return mkdtempSync(join(tmpdir(), `weft-etcd-${process.pid}-`));
  }

  /** Starts `e`, stopping it (and removing its directory) when it does not come up. */
  protected static async started<T extends EtcdBase>(e: T): Promise<T> {
    try {
      await e.restart();
    } catch (err) {
      await e.stop();
      throw err;
    }
    return e;
  }

  abstract restart(): Promise<void>;
  abstract kill(graceMs?: number): Promise<void>;

  /** etcd's command line for this directory and these ports. */
  protected args(): string[] {
    return etcdArgs(this.dir, this.certs, this.clientPort, this.peerPort);
  }

  /** Waits until etcd answers over TLS; `exited` throws with the reason once it has died. */
  protected async waitHealthy(what: string, exited: () => Promise<void>): Promise<void> {
    await waitFor(
      what,
      async () => {
        await exited();
        await this.etcdctl(["endpoint", "health"]);
        return true;
      },
      30_000,
      100,
    );
  }

  /** The 127.0.0.1 port clients connect to (to bridge it into network namespaces). */
  get port(): number {
    return this.clientPort;
  }

  /** The environment weft-controller and weft-agent read in etcd mode. */
  env(prefix?: string): Record<string, string> {
    return etcdEnv(this.client, prefix);
  }

  /** Stops etcd and removes its directory. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** etcdctl's connection flags for this etcd (endpoints and the client certificate). */
  etcdctlFlags(): string[] {
    return etcdctlFlags(this.client);
  }

  /** Runs etcdctl (API v3) against this etcd with the client certificate; returns stdout. */
  etcdctl(args: string[]): Promise<string> {
    return runEtcdctl(this.client, args);
  }
}

/**
 * A TLS etcd of its own for one test file, separate from the apiserver's: client certificates
 * required, free 127.0.0.1 ports, a temporary data dir; stopped (and restarted on the same
 * ports and data) by pid.
 */
export class TestEtcd extends EtcdBase {
  pid = 0;

  /**
   * Starts a fresh etcd and waits until it answers over TLS with the client certificate. `dir`
   * (created if missing, e.g. the lab's) replaces the default temporary directory.
   */
  static async start(opts: { dir?: string } = {}): Promise<TestEtcd> {
    const dir = opts.dir ?? EtcdBase.tempDir();
    mkdirSync(dir, { recursive: true });
    return EtcdBase.started(new TestEtcd(dir, await freePort(), await freePort()));
  }

  /** (Re)starts etcd on the same ports and data directory; a no-op while it runs. */
  async restart(): Promise<void> {
    if (this.pid && alive(this.pid)) return;
    this.pid = startDetached(tool("etcd"), this.args(), join(this.dir, "etcd.log")).pid;
    await this.waitHealthy("test etcd to answer", async () => {
      if (!alive(this.pid)) throw new Error(`etcd exited; see ${join(this.dir, "etcd.log")}`);
    });
  }

  /** Stops etcd (SIGTERM, SIGKILL after graceMs); the data directory stays for restart(). */
  async kill(graceMs = 5000): Promise<void> {
    if (this.pid) await stopPid(this.pid, graceMs);
  }

  log(): string {
    try {
      return readFileSync(join(this.dir, "etcd.log"), "utf8");
    } catch {
      return "";
    }
  }
}
