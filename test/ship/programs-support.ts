import { existsSync } from "node:fs";
import { join } from "node:path";

/** A program the image runs, where it comes from, and how to check that it starts. */
export interface Program {
  name: string;
  /** Path inside the image's /app (and the repository after `tsc`). */
  dist: string;
  /** The TypeScript source it is compiled from, or the build script that makes it. */
  source: string;
  /**
   * How to see it start without a cluster: `--help` prints usage; the plugin answers CNI VERSION;
   * the installer runs the chart's own init container script against temporary directories.
   */
  smoke: "help" | "cni-version" | "install";
}

/** Every program of the one image (Dockerfile header, chart commands). */
export const PROGRAMS: Program[] = [
  {
    name: "weft-controller",
    dist: "dist/controllers/main.js",
    source: "controllers/main.ts",
    smoke: "help",
  },
  { name: "weft-agent", dist: "dist/agent/main.js", source: "agent/main.ts", smoke: "help" },
  { name: "weftctl", dist: "dist/cli/main.js", source: "cli/main.ts", smoke: "help" },
  { name: "weft-cni installer", dist: "dist/cni/install.js", source: "cni/install.ts", smoke: "install" },
  { name: "weft-cni", dist: "dist/cni/weft-cni.js", source: "cni/bundle.ts", smoke: "cni-version" },
];

/** The programs whose sources exist in this checkout; the others are still being written. */
export function writtenPrograms(root: string): { written: Program[]; missing: Program[] } {
  const written = PROGRAMS.filter((p) => existsSync(join(root, p.source)));
  return { written, missing: PROGRAMS.filter((p) => !written.includes(p)) };
}

/** Every `/app/dist/....js` (or `dist/....js`) a text refers to, as `dist/....js`. */
export function distReferences(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/(?:\/app\/)?\b(dist\/[\w./-]+\.js)\b/g)) found.add(m[1] as string);
  return [...found].sort();
}
