#!/usr/bin/env node
import { errorMessage } from "../lib/index.js";
import { bgpCommands } from "./bgp/index.js";
import { type Command, makeContext, UsageError } from "./command.js";
import { flannelCommands } from "./flannel/index.js";
import { ipamCommands } from "./ipam/index.js";
import { nodeCommands } from "./node/index.js";

/** Every subcommand; a new area (node status, bgp topology) adds its module's list here. */
const COMMANDS: Command[] = [...ipamCommands, ...nodeCommands, ...bgpCommands, ...flannelCommands];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.path.join(" ").length));
  return [
    "weftctl: inspect and repair Weft",
    "",
    "Usage: weftctl [--kubeconfig PATH] [--datastore kubernetes|etcd] COMMAND [flags]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.path.join(" ").padEnd(width)}  ${c.summary}`),
    "",
    "The kubeconfig is found like kubectl finds it: --kubeconfig, $KUBECONFIG, in-cluster, ~/.kube/config.",
  ].join("\n");
}

/** Global flags may come anywhere; the rest selects the command (longest matching path). */
function split(argv: string[]): { kubeconfig?: string; datastore?: string; help: boolean; rest: string[] } {
  const rest: string[] = [];
  let kubeconfig: string | undefined;
  let datastore: string | undefined;
  let wantHelp = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--datastore") datastore = argv[++i];
    else if (a.startsWith("--datastore=")) datastore = a.slice("--datastore=".length);
    else if (a === "--kubeconfig") kubeconfig = argv[++i];
    else if (a.startsWith("--kubeconfig=")) kubeconfig = a.slice("--kubeconfig=".length);
    else if (a === "-h" || a === "--help") wantHelp = true;
    else rest.push(a);
  }
  return { kubeconfig, datastore, help: wantHelp, rest };
}

async function main(argv: string[]): Promise<number> {
  const { kubeconfig, datastore, help: wantHelp, rest } = split(argv);
  const cmd = COMMANDS.filter((c) => c.path.every((w, i) => rest[i] === w)).sort(
    (a, b) => b.path.length - a.path.length,
  )[0];
  if (!cmd) {
    const out = help();
    if (wantHelp || rest.length === 0) {
      process.stdout.write(`${out}\n`);
      return wantHelp ? 0 : 2;
    }
    process.stderr.write(`unknown command: ${rest.join(" ")}\n\n${out}\n`);
    return 2;
  }
  if (wantHelp) {
    process.stdout.write(`${cmd.summary}\n\nUsage: ${cmd.usage}\n`);
    return 0;
  }
  try {
    return await cmd.run(makeContext(kubeconfig, datastore), rest.slice(cmd.path.length));
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`error: ${(err as Error).message}\nUsage: ${cmd.usage}\n`);
      return 2;
    }
    process.stderr.write(`error: ${errorMessage(err)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
