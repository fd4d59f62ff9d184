import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withLock } from "../containers/lock.js";
import { imageStore, NO_REGISTRY_ENV, REGISTRIES_CONF, run, weftCache } from "../containers/podman.js";
import { archiveName, stamp } from "./recipes.js";

/**
 * The one image store of the project: every image a test, the lab or a real-node cluster runs is
 * built here with buildah (nothing can be pulled), into Weft's own storage (never the machine's),
 * and tagged `<repository>:<stamp>`, the stamp being a hash of everything the image is made from.
 * A run rebuilds an image only when an input changed. The test engine reads this storage as a
 * read-only additional store; real-node clusters import OCI archives exported from it.
 */

/** Exported archives, Debian root filesystems and npm packages the builds read. */
export const imagesDir = join(weftCache, "images");
/** Runtime state of the store's mounts: tmpfs, so that it does not outlive a reboot. */
const runRoot = "/run/weft-containers";
const confDir = join(weftCache, "containers", "conf");
const BUILD_LOCK = join(weftCache, "containers", "build.lock");
/** Bumped when the way images are made changes in a way their inputs do not show. */
const STORE_VERSION = "2";
/** Stamps kept per repository, so that a run still using the previous one is not pulled from under it. */
const KEEP = 2;

/**
 * Every run rewrites the shared configuration; a plain write would let a concurrent run's buildah
 * read a truncated file ("The storage 'driver' option must be set"), so it is renamed into place.
 */
function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function buildEnv(): NodeJS.ProcessEnv {
  mkdirSync(confDir, { recursive: true });
  const storage = join(confDir, "storage.conf");
  const registries = join(confDir, "registries.conf");
  writeAtomically(
    storage,
    `[storage]\ndriver = "overlay"\ngraphroot = ${JSON.stringify(imageStore)}\nrunroot = ${JSON.stringify(runRoot)}\n`,
  );
  writeAtomically(registries, REGISTRIES_CONF);
  return {
    ...process.env,
    ...NO_REGISTRY_ENV,
    CONTAINERS_STORAGE_CONF: storage,
    CONTAINERS_REGISTRIES_CONF: registries,
  };
}

let env: NodeJS.ProcessEnv | undefined;

/** Runs buildah against the image store; stdout trimmed. */
export async function buildah(args: string[], opts: { cwd?: string } = {}): Promise<string> {
  env ??= buildEnv();
  return (await run("buildah", args, env, { timeoutMs: 30 * 60_000, ...opts })).trim();
}

interface ImageListing {
  names?: string[];
  created: number;
}

async function listImages(): Promise<ImageListing[]> {
  const out = await buildah(["images", "--json"]);
  return out ? (JSON.parse(out) as ImageListing[]) : [];
}

/** Whether the store holds an image of this exact reference. */
export async function imageExists(ref: string): Promise<boolean> {
  return (await listImages()).some((i) => i.names?.includes(ref));
}

/** References in the store whose repository is `repo` (every stamp built so far), newest first. */
export async function imageTags(repo: string): Promise<string[]> {
  return (await listImages())
    .sort((a, b) => b.created - a.created)
    .flatMap((i) => (i.names ?? []).filter((n) => n.startsWith(`${repo}:`)));
}

/** Removes images by reference (the store keeps a layer while another image uses it). */
export async function removeImages(refs: string[]): Promise<void> {
  if (refs.length) await buildah(["rmi", ...refs]);
}

/** Commits a working container as `ref` (and removes the working container). */
export async function commit(container: string, ref: string): Promise<void> {
  await buildah(["commit", "--quiet", "--rm", container, ref]);
}

/**
 * A working container from `from` (an image reference or "scratch"), handed to `fill`, then
 * committed as `ref`; removed again when `fill` fails.
 */
export async function buildFrom(
  from: string,
  ref: string,
  fill: (ctr: string) => Promise<void>,
): Promise<void> {
  const ctr = await buildah(["from", "--quiet", "--pull-never", from]);
  try {
    await fill(ctr);
    await commit(ctr, ref);
  } catch (err) {
    await buildah(["rm", ctr]).catch(() => undefined);
    throw err;
  }
}

/** How to make one image: its repository, what it is made from, and the build itself. */
export interface ImageRecipe {
  /** Repository of the stamped reference, e.g. localhost/weft-frr. */
  repo: string;
  /** Everything the image is made from, as text (file contents as hashes); the stamp hashes it. */
  inputs: string[];
  /** Makes the image and commits it as `ref` (it must not ensure other images: resolve them first). */
  build(ref: string): Promise<void>;
  /** A second name the image carries in the store (e.g. the base name a Dockerfile starts FROM). */
  alias?: string;
}

export interface StoredImage {
  /** `<repo>:<stamp>` */
  ref: string;
  stamp: string;
  /** Seconds spent making it in this call; 0 when the store had it. */
  seconds: number;
}

/**
 * The image of this recipe, built when the store lacks its stamp (one builder at a time across
 * checkouts; older stamps beyond KEEP are removed). Logs one line per image made.
 */
export async function ensureImage(
  recipe: ImageRecipe,
  log: (line: string) => void = console.log,
): Promise<StoredImage> {
  const stampHex = stamp([STORE_VERSION, recipe.repo, ...recipe.inputs]);
  const ref = `${recipe.repo}:${stampHex}`;
  let seconds = 0;
  if (!(await imageExists(ref))) {
    await withLock(BUILD_LOCK, async () => {
      if (await imageExists(ref)) return;
      const t0 = Date.now();
      log(`# image ${ref}: building`);
      await recipe.build(ref);
      seconds = (Date.now() - t0) / 1000;
      log(`# image ${ref} built in ${seconds.toFixed(1)} s`);
      const older = (await imageTags(recipe.repo)).filter((r) => r !== ref).slice(KEEP - 1);
      await removeImages(older).catch(() => undefined);
    });
  }
  if (recipe.alias) await buildah(["tag", ref, recipe.alias]);
  return { ref, stamp: stampHex, seconds };
}

/**
 * The image as an OCI archive under the name a cluster knows it by (e.g. agnhost:2.53), for
 * `ctr images import`; exported once per stamp, uncompressed (the import reads it once, on this
 * machine: compressing costs more than it saves). Archives of older stamps of that name go.
 */
export async function exportArchive(image: StoredImage, name: string): Promise<string> {
  mkdirSync(imagesDir, { recursive: true });
  const file = archiveName(name, image.stamp);
  const archive = join(imagesDir, file);
  await withLock(BUILD_LOCK, async () => {
    if (readdirSync(imagesDir).includes(file)) return;
    const tmp = `${archive}.tmp`;
    rmSync(tmp, { force: true });
    await buildah(["push", "--quiet", "--disable-compression", image.ref, `oci-archive:${tmp}:${name}`]);
    renameSync(tmp, archive);
    // archives of the same repository (any tag, any stamp) beyond the newest KEEP
    const repo = `${name.slice(0, name.lastIndexOf(":")).replace(/[/:@]/g, "_")}_`;
    pruneNewest(imagesDir, (f) => f.startsWith(repo) && f.endsWith(".oci.tar"), KEEP);
  });
  return archive;
}

/** Removes the entries of `dir` that `match` beyond the `keep` most recently modified. */
export function pruneNewest(dir: string, match: (name: string) => boolean, keep: number): void {
  const entries = readdirSync(dir)
    .filter(match)
    .map((f) => ({ f, mtime: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const { f } of entries.slice(keep)) rmSync(join(dir, f), { recursive: true, force: true });
}

/** Removes working containers a killed build left behind (they hold storage). */
export async function removeStaleContainers(): Promise<void> {
  await buildah(["rm", "--all"]).catch(() => undefined);
}
