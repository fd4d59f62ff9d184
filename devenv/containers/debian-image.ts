import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildah, commit } from "./buildah.js";
import { run } from "./podman.js";

/**
 * A container image made of a minimal Debian root filesystem with the packages a test needs,
 * installed by mmdebstrap from the machine's own Debian mirror (the one apt-get uses), plus a few
 * files of our own. Reusable for any "Debian with package X" image.
 */
export interface DebianImageSpec {
  /** Full reference to commit, e.g. localhost/weft-frr:<stamp>. */
  ref: string;
  packages: string[];
  files?: Array<{ path: string; content: string; mode?: number }>;
  entrypoint?: string[];
  cmd?: string[];
  labels?: Record<string, string>;
}

/** The Debian release and apt sources of this machine: images match what apt-get installs here. */
export function debianSources(): { suite: string; sources: string } {
  const release = readFileSync("/etc/os-release", "utf8");
  const suite = /^VERSION_CODENAME=(\S+)$/m.exec(release)?.[1];
  if (!suite || !/^ID=debian$/m.test(release))
    throw new Error("Debian images are built on Debian (no VERSION_CODENAME)");
  const deb822 = "/etc/apt/sources.list.d/debian.sources";
  if (existsSync(deb822)) return { suite, sources: readFileSync(deb822, "utf8") };
  const list = readFileSync("/etc/apt/sources.list", "utf8")
    .split("\n")
    .filter((l) => /^deb\s/.test(l))
    .join("\n");
  return { suite, sources: `${list}\n` };
}

/** What the image depends on besides the spec: part of its stamp. */
export function debianStampInputs(spec: Omit<DebianImageSpec, "ref">): string {
  return JSON.stringify({ spec, ...debianSources() });
}

export async function buildDebianImage(spec: DebianImageSpec): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "weft-debimage-"));
  try {
    const { suite, sources } = debianSources();
    const deb822 = !/^deb\s/m.test(sources);
    const sourcesFile = join(work, deb822 ? "debian.sources" : "debian.list");
    writeFileSync(sourcesFile, sources);
    const rootfs = join(work, "rootfs.tar");
    await run(
      "mmdebstrap",
      [
        "--quiet",
        "--variant=essential",
        `--include=${spec.packages.join(",")}`,
        // documentation and translations are dead weight in a test image
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        suite,
        rootfs,
        sourcesFile,
      ],
      process.env,
      { timeoutMs: 20 * 60_000 },
    );
    const c = await buildah(["from", "--quiet", "scratch"]);
    try {
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
      await commit(c, spec.ref);
    } catch (err) {
      await buildah(["rm", c]).catch(() => {});
      throw err;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
