/**
 * The DaemonSet init container's step: put the plugin into the host's CNI bin directory and the
 * conflist into its configuration directory. Each file is written under a temporary name in the
 * target directory and renamed over the old one, so a runtime never sees half a file (a rename
 * within one filesystem is atomic).
 *   node dist/cni/install.js [--bin-dir /opt/cni/bin] [--conf-dir /etc/cni/net.d]
 *     [--plugin dist/cni/weft] [--conflist examples/cni/10-weft.conflist] [--agent-socket PATH]
 *     [--node PATH]
 * The plugin is either the native one (dist/cni/weft, a static executable: the default) or the
 * Node.js one (dist/cni/weft-cni.js, a script): for a script, --node is the absolute node binary
 * its shebang names, for hosts without node in PATH.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

export interface InstallOptions {
  binDir: string;
  confDir: string;
  /** the native plugin (dist/cni/weft) or the Node.js one (dist/cni/weft-cni.js) */
  plugin: string;
  conflist: string;
  /** installed name; must equal the conflist's "type" */
  pluginName?: string;
  agentSocket?: string;
  /** the interpreter of a script plugin (its shebang); ignored for the native plugin */
  nodePath?: string;
}

export function writeAtomic(path: string, data: string | Buffer, mode: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    writeFileSync(tmp, data, { mode });
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Returns the paths written. */
export function installCni(o: InstallOptions): { plugin: string; conflist: string } {
  let plugin = readFileSync(o.plugin);
  const isScript = plugin.subarray(0, 2).toString("latin1") === "#!";
  if (isScript && o.nodePath) {
    plugin = Buffer.from(plugin.toString("utf8").replace(/^#!.*\n/, `#!${o.nodePath}\n`), "utf8");
  }
  const conf = JSON.parse(readFileSync(o.conflist, "utf8")) as { plugins?: Array<Record<string, unknown>> };
  const name = o.pluginName ?? "weft";
  const ours = conf.plugins?.find((p) => p.type === name);
  if (!ours) throw new Error(`${o.conflist} has no plugin of type ${JSON.stringify(name)}`);
  if (o.agentSocket) ours.agentSocket = o.agentSocket;
  const pluginPath = join(o.binDir, name);
  const conflistPath = join(o.confDir, basename(o.conflist));
  // the binary first: a conflist naming a plugin that is not there yet would fail pods
  writeAtomic(pluginPath, plugin, 0o755);
  writeAtomic(conflistPath, `${JSON.stringify(conf, null, 2)}\n`, 0o644);
  return { plugin: pluginPath, conflist: conflistPath };
}

function repoFile(rel: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, rel);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      "bin-dir": { type: "string", default: "/opt/cni/bin" },
      "conf-dir": { type: "string", default: "/etc/cni/net.d" },
      plugin: { type: "string", default: repoFile("dist/cni/weft") },
      conflist: { type: "string", default: repoFile("examples/cni/10-weft.conflist") },
      "agent-socket": { type: "string" },
      node: { type: "string" },
    },
  });
  try {
    const out = installCni({
      binDir: values["bin-dir"],
      confDir: values["conf-dir"],
      plugin: values.plugin,
      conflist: values.conflist,
      ...(values["agent-socket"] ? { agentSocket: values["agent-socket"] } : {}),
      ...(values.node ? { nodePath: values.node } : {}),
    });
    console.log(`installed ${out.plugin} and ${out.conflist}`);
  } catch (err) {
    console.error(`weft-cni install failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
