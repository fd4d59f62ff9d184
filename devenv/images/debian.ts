import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../containers/podman.js";
import { SLIM_DPKG_OPTIONS, stamp } from "./recipes.js";
import { buildah, buildFrom, imagesDir } from "./store.js";

/**
 * Debian root filesystems and the images made from them: one function makes every Debian-based
 * image of the project (the test images, the node base of Weft's Dockerfile, upstream's e2e
 * images), with mmdebstrap from the machine's own apt sources (what apt-get installs here).
 */

/** The Debian release and apt sources of this machine. */
export function debianSources(): { suite: string; sources: string } {
  const release = readFileSync("/etc/os-release", "utf8");
  const suite = /^VERSION_CODENAME=(\S+)$/m.exec(release)?.[1];
  if (!suite || !/^ID=debian$/m.test(release))
    throw new Error("Debian images are built on Debian (no VERSION_CODENAME in /etc/os-release)");
  const deb822 = "/etc/apt/sources.list.d/debian.sources";
  if (existsSync(deb822)) return { suite, sources: readFileSync(deb822, "utf8") };
  const list = readFileSync("/etc/apt/sources.list", "utf8")
    .split("\n")
    .filter((l) => /^deb\s/.test(l))
    .join("\n");
  return { suite, sources: `${list}\n` };
}

/**
 * A minbase Debian root filesystem with `packages`, slimmed like debian:*-slim (no manuals, docs
 * or translations; the filters stay in its dpkg configuration for packages installed later), as
 * a tarball cached by its inputs. Returns the tarball's path.
 */
export async function debianRootfs(packages: readonly string[]): Promise<string> {
  const { suite, sources } = debianSources();
  const sorted = [...new Set(packages)].sort();
  const out = join(
    imagesDir,
    `rootfs-${suite}-${stamp(["rootfs-2", suite, sources, ...SLIM_DPKG_OPTIONS, ...sorted])}.tar`,
  );
  if (existsSync(out)) return out;
  mkdirSync(imagesDir, { recursive: true });
  const work = mkdtempSync(join(imagesDir, ".rootfs-"));
  try {
    const deb822 = !/^deb\s/m.test(sources);
    const sourcesFile = join(work, deb822 ? "debian.sources" : "debian.list");
    writeFileSync(sourcesFile, sources);
    const t0 = Date.now();
    console.log(`# images: a Debian ${suite} rootfs with mmdebstrap (${sorted.join(" ") || "minbase"})`);
    await run(
      "mmdebstrap",
      [
        "--quiet",
        "--variant=minbase",
        "--mode=root",
        "--format=tar",
        ...SLIM_DPKG_OPTIONS.map((o) => `--dpkgopt=${o}`),
        ...(sorted.length ? [`--include=${sorted.join(",")}`] : []),
        suite,
        join(work, "rootfs.tar"),
        sourcesFile,
      ],
      process.env,
      { timeoutMs: 30 * 60_000 },
    );
    renameSync(join(work, "rootfs.tar"), out);
    console.log(`# images: rootfs made in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

/** What the inputs of a rootfs are, for the stamp of an image made from it. */
export function rootfsInputs(packages: readonly string[]): string[] {
  const { suite, sources } = debianSources();
  return [suite, sources, ...SLIM_DPKG_OPTIONS, ...[...new Set(packages)].sort()];
}

/** An image made of a Debian rootfs with some packages, a few files of our own and its configuration. */
export interface DebianImageSpec {
  packages: string[];
  files?: Array<{ path: string; content: string; mode?: number }>;
  entrypoint?: string[];
  cmd?: string[];
  labels?: Record<string, string>;
}

/** The image's inputs: the spec and the rootfs it starts from. */
export function debianImageInputs(spec: DebianImageSpec): string[] {
  return [JSON.stringify(spec), ...rootfsInputs(spec.packages)];
}

/** Builds a DebianImageSpec and commits it as `ref`. */
export async function buildDebianImage(spec: DebianImageSpec, ref: string): Promise<void> {
  const rootfs = await debianRootfs(spec.packages);
  const work = mkdtempSync(join(imagesDir, ".files-"));
  try {
    await buildFrom("scratch", ref, async (c) => {
      await buildah(["add", "--quiet", c, rootfs, "/"]);
      for (const [i, f] of (spec.files ?? []).entries()) {
        const src = join(work, `file-${i}`);
        writeFileSync(src, f.content);
        await buildah(["copy", "--quiet", "--chmod", (f.mode ?? 0o644).toString(8), c, src, f.path]);
      }
      const config: string[] = [];
      if (spec.entrypoint) config.push("--entrypoint", JSON.stringify(spec.entrypoint));
      if (spec.cmd) config.push("--cmd", JSON.stringify(spec.cmd));
      for (const [k, v] of Object.entries(spec.labels ?? {})) config.push("--label", `${k}=${v}`);
      if (config.length) await buildah(["config", ...config, c]);
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
