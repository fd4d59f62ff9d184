/**
 * Build step: node dist/cni/bundle.js  ->  dist/cni/weft-cni.js and dist/cni/weft (executable).
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { bundlePlugin, findRepoRoot } from "./bundler.js";

const root = findRepoRoot();
try {
  const weft = await bundlePlugin(join(root, "dist", "cni"), root);
  console.log(`bundled ${weft} (${statSync(weft).size} bytes)`);
} catch (err) {
  console.error(`weft-cni bundle failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
