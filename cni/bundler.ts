/**
 * Bundles the Node.js plugin into one self-contained executable file. The output has no import or
 * require at all (builtins come from process.getBuiltinModule), so it runs whether node treats
 * it as CommonJS or as a module, wherever it is installed. It is the fallback for the native
 * plugin (cni/native), which the chart installs by default; the agent runs the same TypeScript
 * for the native plugin's requests (POST /v1/cni/exec).
 */
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

/**
 * Libraries the plugin's imports reach but the plugin itself never calls (ip-num, behind net/'s
 * IPv6 parser): CommonJS without a sideEffects flag, so esbuild would keep them whole. Declared
 * free of side effects, they leave the bundle when nothing uses them.
 */
const SIDE_EFFECT_FREE = /^ip-num$/;

const sideEffectFree: Plugin = {
  name: "side-effect-free",
  setup(b) {
    b.onResolve({ filter: SIDE_EFFECT_FREE }, async (args) => {
      if (args.pluginData === "side-effect-free") return undefined;
      const r = await b.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        importer: args.importer,
        pluginData: "side-effect-free",
      });
      return { ...r, sideEffects: false };
    });
  },
};

export function findRepoRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find the repository root (package.json)");
    dir = up;
  }
  return dir;
}

/** Writes `<outDir>/weft-cni.js` (executable, `#!/usr/bin/env node`) and returns its path. */
export async function bundlePlugin(outDir: string, repoRoot = findRepoRoot()): Promise<string> {
  const outFile = join(outDir, "weft-cni.js");
  await build({
    entryPoints: [join(repoRoot, "cni", "main.ts")],
    outfile: outFile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "iife",
    minify: true,
    legalComments: "none",
    banner: { js: "#!/usr/bin/env node" },
    logLevel: "error",
    plugins: [sideEffectFree],
  });
  const text = readFileSync(outFile, "utf8");
  // Guards the "no heavy imports" promise: a dependency that sneaks in shows up here.
  if (/\brequire\(|\bimport\(|^import /m.test(text)) {
    throw new Error(`${outFile} loads modules at run time; the plugin must stay self-contained`);
  }
  chmodSync(outFile, 0o755);
  return outFile;
}
