/**
 * A node for CNI tests and benchmarks: a "node" network namespace with the agent's CNI server
 * (in-memory assigner) running inside it on a unix socket in a temp dir, a CNI_PATH directory
 * holding the native plugin as `weft` (what the chart installs) and the Node.js plugin as
 * `weft-cni.js`, and pod namespaces on demand. Every name carries the pid; close() removes
 * namespaces, the server (by pid) and files, also after a failure.
 */
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sh, startDetached, stopPid, waitFor } from "./procs.js";
import { nativeCniPlugin, repoRoot, systemTool } from "./tools.js";
import { requireRoot } from "./topology.js";

export const REFERENCE_PLUGINS = "/usr/lib/cni";

/**
 * Where a runtime finds the plugins: the native plugin (built by make tools) as `weft`, and the
 * Node.js plugin `make build` bundles into dist/cni/ as `weft-cni.js`.
 */
function installBuiltPlugins(binDir: string): void {
  mkdirSync(binDir, { recursive: true });
  const plugins: Array<[string, string]> = [
    [nativeCniPlugin(), "weft"],
    [join(repoRoot, "dist", "cni", "weft-cni.js"), "weft-cni.js"],
  ];
  for (const [built, name] of plugins) {
    if (!existsSync(built)) throw new Error(`${built} is missing: run 'make build' (it bundles the plugin)`);
    copyFileSync(built, join(binDir, name));
    chmodSync(join(binDir, name), 0o755);
  }
}

export interface ExecResult {
  status: number;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
}

export interface PodRef {
  containerId: string;
  netns?: string;
  ifname?: string;
}

/** Fails (never skips) with how to get what the CNI tests need. */
export function requireCniTools(): void {
  requireRoot("CNI dataplane tests (they create network namespaces)");
  systemTool("/usr/bin/nsenter", "util-linux");
  systemTool("/usr/sbin/ip", "iproute2");
  systemTool(join(REFERENCE_PLUGINS, "portmap"), "containernetworking-plugins");
}

/** Runs a plugin the way a runtime does: config on stdin, CNI_* in a clean environment. */
export function execPlugin(
  binary: string,
  command: string,
  pod: PodRef,
  config: unknown,
  extraEnv: Record<string, string> = {},
): Promise<ExecResult> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.containerId,
    CNI_IFNAME: pod.ifname ?? "eth0",
    CNI_PATH: `${join(binary, "..")}:${REFERENCE_PLUGINS}`,
    ...(pod.netns ? { CNI_NETNS: pod.netns } : {}),
    ...extraEnv,
  };
  const stdin = typeof config === "string" ? config : JSON.stringify(config);
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], { env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (code) => {
      const stdout = Buffer.concat(out).toString("utf8");
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ status: code ?? -1, stdout, stderr: Buffer.concat(err).toString("utf8"), json });
    });
    // a plugin may exit without reading stdin (VERSION): that is not an error
    child.stdin.on("error", () => undefined);
    child.stdin.end(stdin);
  });
}

export class CniFixture {
  readonly dir: string;
  readonly binDir: string;
  readonly confDir: string;
  readonly socket: string;
  readonly node: string;
  /** the native plugin, under the name runtimes look up (the conflist's "type") */
  readonly weft: string;
  /** the Node.js plugin (the fallback), next to it */
  readonly nodePlugin: string;
  private serverPid = 0;
  private readonly netns: string[] = [];

  constructor(
    readonly tag: string,
    readonly pool4 = "10.77.0.0/22",
    readonly pool6 = "fd00:77::/112",
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `weft-${tag}-${process.pid}-`));
    this.binDir = join(this.dir, "bin");
    this.confDir = join(this.dir, "net.d");
    this.socket = join(this.dir, "agent.sock");
    this.node = `${tag}n${process.pid}`;
    this.weft = join(this.binDir, "weft");
    this.nodePlugin = join(this.binDir, "weft-cni.js");
    mkdirSync(this.confDir, { recursive: true });
  }

  async setup(): Promise<void> {
    requireCniTools();
    installBuiltPlugins(this.binDir);
    this.addNetns(this.node);
    // the node routes between its pods; forwarding is per namespace
    sh("ip", [
      "netns",
      "exec",
      this.node,
      "sysctl",
      "-qw",
      "net.ipv4.ip_forward=1",
      "net.ipv6.conf.all.forwarding=1",
    ]);
    await this.startServer();
  }

  /** Creates a namespace (lo up) owned by this fixture; returns its path. */
  addNetns(name: string): string {
    sh("ip", ["netns", "add", name]);
    this.netns.push(name);
    sh("ip", ["-n", name, "link", "set", "lo", "up"]);
    return `/var/run/netns/${name}`;
  }

  deleteNetns(name: string): void {
    try {
      sh("ip", ["netns", "del", name]);
    } catch {
      /* already gone */
    }
    const i = this.netns.indexOf(name);
    if (i >= 0) this.netns.splice(i, 1);
  }

  async startServer(): Promise<void> {
    const server = join(repoRoot, "dist", "devenv", "cni-standalone.js");
    const started = startDetached(
      "ip",
      [
        "netns",
        "exec",
        this.node,
        process.execPath,
        server,
        "--socket",
        this.socket,
        "--node",
        this.node,
        "--pool4",
        this.pool4,
        "--pool6",
        this.pool6,
      ],
      join(this.dir, "server.log"),
      { ...process.env, WEFT_LOG_LEVEL: process.env.WEFT_LOG_LEVEL ?? "warn" },
    );
    this.serverPid = started.pid;
    await waitFor(
      `CNI server socket ${this.socket}`,
      () => (existsSync(this.socket) ? true : undefined),
      15000,
      25,
    );
  }

  async stopServer(): Promise<void> {
    if (this.serverPid) await stopPid(this.serverPid);
    this.serverPid = 0;
    rmSync(this.socket, { force: true });
  }

  conf(over: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion: "1.0.0",
      name: `weft-${this.tag}-${process.pid}`,
      type: "weft",
      agentSocket: this.socket,
      ...over,
    };
  }

  /** A conflist file in confDir (for cnitool's NETCONFPATH); returns the network name. */
  writeConflist(file: string, conflist: Record<string, unknown>): string {
    writeFileSync(join(this.confDir, file), JSON.stringify(conflist));
    return conflist.name as string;
  }

  /** Runs the native plugin (or another binary given as plugin) as a runtime does. */
  exec(
    command: string,
    pod: PodRef,
    config: unknown = this.conf(),
    extraEnv?: Record<string, string>,
    plugin = this.weft,
  ) {
    return execPlugin(plugin, command, pod, config, extraEnv);
  }

  /** iproute2 inside one of the fixture's namespaces. */
  ip(ns: string, ...args: string[]): string {
    return sh("ip", ["-n", ns, ...args]);
  }

  async close(): Promise<void> {
    await this.stopServer().catch(() => undefined);
    for (const ns of [...this.netns].reverse()) this.deleteNetns(ns);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
