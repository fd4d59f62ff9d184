import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

/**
 * The layers of the tree and which may import which (docs/architecture.md). Imports point one way:
 * a package names the packages below it that it may use; anything else is an upward or sideways
 * import and fails the layer test. Tests and their support files are exempt (a test may reach
 * into any layer it checks), but nothing else may import them.
 */
const FOUNDATION = ["net", "api", "lib"] as const;
const PURE = [...FOUNDATION, "ipam", "bgp", "netlink"] as const;
const SERVICES = [...PURE, "datastore", "runtime", "ipam/client"] as const;
const WITHOUT_NETLINK = SERVICES.filter((p) => p !== "netlink");

export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  net: [],
  api: ["net"],
  lib: ["api", "net"],
  ipam: FOUNDATION,
  bgp: FOUNDATION,
  netlink: FOUNDATION,
  datastore: [...FOUNDATION, "ipam"],
  runtime: [...FOUNDATION, "datastore"],
  "ipam/client": [...FOUNDATION, "ipam", "datastore", "runtime"],
  cni: FOUNDATION,
  controllers: WITHOUT_NETLINK,
  agent: [...SERVICES, "cni"],
  cli: WITHOUT_NETLINK,
  devenv: [...SERVICES, "cni", "controllers", "agent", "cli"],
  lab: [...WITHOUT_NETLINK, "devenv"],
  bench: [...SERVICES, "cni", "controllers", "agent", "devenv"],
  test: [], // tests may import anything below lab and bench
};

/** The directories the shipped programs are compiled from (the image's build copies exactly these). */
export const PROGRAM_LAYERS = [
  ...PURE,
  "datastore",
  "runtime",
  "controllers",
  "agent",
  "cni",
  "cli",
] as const;

/** The package a repository-relative path belongs to: the longest LAYERS key that prefixes it. */
export function packageOf(path: string): string | undefined {
  const parts = path.split(sep).join("/");
  let best: string | undefined;
  for (const key of Object.keys(LAYERS)) {
    if ((parts === key || parts.startsWith(`${key}/`)) && (!best || key.length > best.length)) best = key;
  }
  return best;
}

/** Test files and the helpers only tests use. */
export function isTestFile(path: string): boolean {
  return /\.test\.ts$/.test(path) || /-support\.ts$/.test(path) || packageOf(path) === "test";
}

export interface ImportViolation {
  file: string;
  spec: string;
  target: string;
  reason: string;
}

const IMPORT = /(?:from\s+|import\s*\(\s*|import\s+)["'](\.{1,2}\/[^"']+)["']/g;

/** Every relative import of one source file, as repository-relative target paths (.ts). */
export function importsOf(root: string, file: string, text: string): { spec: string; target: string }[] {
  const out: { spec: string; target: string }[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1]!;
    const target = relative(root, resolve(root, dirname(file), spec)).replace(/\.js$/, ".ts");
    out.push({ spec, target });
  }
  return out;
}

/**
 * What one import breaks, if anything: the direction of the layers, the rule that nothing but a
 * test imports a test file, and the rule that a package is entered from outside only through its
 * index.ts.
 */
export function checkImport(file: string, target: string): string | undefined {
  const from = packageOf(file);
  const to = packageOf(target);
  if (!from || !to) return undefined;
  const fromTest = isTestFile(file);
  if (isTestFile(target) && !fromTest) return `${file} is not a test and imports the test file ${target}`;
  if (from === to || fromTest) return undefined;
  if (to === "lab" || to === "bench" || to === "test") return `${to}/ is a program: nothing imports it`;
  if (!LAYERS[from]?.includes(to))
    return `${from}/ may not import ${to}/ (layers: ${from} -> ${LAYERS[from]?.join(", ") || "nothing"})`;
  if (target !== `${to}/index.ts`) return `${to}/ is entered through ${to}/index.ts, not ${target}`;
  return undefined;
}

function sourceFiles(root: string, dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) return [];
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return sourceFiles(root, path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** Every import in the tree that breaks a rule. */
export function layerViolations(root: string): ImportViolation[] {
  const out: ImportViolation[] = [];
  for (const top of Object.keys(LAYERS).filter((k) => !k.includes("/"))) {
    let files: string[];
    try {
      files = sourceFiles(root, top);
    } catch {
      continue;
    }
    for (const file of files) {
      for (const { spec, target } of importsOf(root, file, readFileSync(join(root, file), "utf8"))) {
        const reason = checkImport(file, target);
        if (reason) out.push({ file, spec, target, reason });
      }
    }
  }
  return out;
}
