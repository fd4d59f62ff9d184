/**
 * weft-cni entry point, bundled into one file (cni/bundle.ts). Everything the runtime needs is on
 * stdout; nothing but a plain message ever reaches stderr, never a stack trace.
 */
import { runPlugin } from "./plugin.js";

// no import of node:fs: see cni/client.ts on why builtins come through getBuiltinModule
const { readFileSync } = process.getBuiltinModule("node:fs");

function readStdin(): string {
  try {
    return readFileSync(0, "utf8");
  } catch {
    // no stdin at all (closed or a terminal with nothing): an empty configuration
    return "";
  }
}

runPlugin(process.env, readStdin()).then(
  ({ stdout, exitCode }) => {
    process.stdout.write(stdout);
    process.exitCode = exitCode;
  },
  (err: unknown) => {
    // runPlugin turns every failure into CNI error JSON; this is the last resort
    process.stdout.write(
      `${JSON.stringify({ cniVersion: "1.1.0", code: 999, msg: "weft-cni failed", details: String(err) })}\n`,
    );
    process.exitCode = 1;
  },
);
