/**
 * Build step: node dist/cni/bundle.js  ->  dist/cni/weft-cni.js (the Node.js plugin, executable).
 * The native plugin the chart installs is built by cni/native/build.sh.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { bundlePlugin, findRepoRoot } from "./bundler.js";

const root = findRepoRoot();
try {
  const plugin = await bundlePlugin(join(root, "dist", "cni"), root);
  console.log(`bundled ${plugin} (${statSync(plugin).size} bytes)`);
} catch (err) {
  console.error(`weft-cni bundle failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
