import { execFile } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "../tools.js";
import { type BuiltImage, buildWeftImageFrom, imagesDir } from "./build.js";

const execFileP = promisify(execFile);

/**
 * The release an upgrade starts from: an earlier commit of this repository, checked out (git
 * archive, no history) into the image cache, with its chart and its image built from its own
 * Dockerfile under a repository name of its own. WEFT_UPGRADE_FROM names the commit (a tag, a
 * branch, a sha); the default is main as it was before its last merge: the first parent of the
 * newest merge commit on HEAD's first-parent line (on a branch, HEAD^1 would often be the same
 * Weft with another test).
 */
export const PREVIOUS_REPOSITORY = "localhost/weft-previous";

export interface PreviousRelease {
  /** What was asked for and the commit it named. */
  ref: string;
  commit: string;
  /** The checkout: its charts/weft is the previous chart. */
  dir: string;
  image: BuiltImage;
}

async function git(args: string[]): Promise<string> {
  try {
    return (await execFileP("git", ["-C", repoRoot, ...args], { maxBuffer: 256 << 20 })).stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`git ${args.join(" ")}: ${e.stderr?.trim() || e.message}`);
  }
}

/** The default previous release: the first parent of the newest merge on HEAD's first-parent line. */
async function beforeLastMerge(): Promise<string> {
  const merge = await git(["rev-list", "--first-parent", "--merges", "-n", "1", "HEAD"]).catch(() => "");
  if (!merge)
    throw new Error(
      "the upgrade tests start from main before its last merge, and this clone has no merge commit " +
        "(a shallow clone?): fetch more history (git fetch --unshallow) or name a commit or tag in WEFT_UPGRADE_FROM",
    );
  return `${merge}^1`;
}

/** The commit of the previous release; fails with how to make it available (a shallow clone lacks it). */
export async function previousCommit(asked?: string): Promise<string> {
  const ref = asked ?? process.env.WEFT_UPGRADE_FROM ?? (await beforeLastMerge());
  try {
    return await git(["rev-parse", "--verify", `${ref}^{commit}`]);
  } catch (err) {
    throw new Error(
      `the upgrade tests start from ${ref}, which this clone does not have (${err instanceof Error ? err.message : String(err)}); ` +
        "fetch more history (git fetch --deepen=1, or --unshallow) or name a commit or tag in WEFT_UPGRADE_FROM",
    );
  }
}

/**
 * The tree of `commit`, extracted once into the image cache. Checkouts of other commits stay (a
 * few MB each; another worktree's run may be building from one).
 */
async function checkout(commit: string): Promise<string> {
  const base = join(imagesDir, "previous-src");
  const dir = join(base, commit);
  if (existsSync(join(dir, ".complete"))) return dir;
  mkdirSync(base, { recursive: true });
  const tmp = join(base, `.${commit}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const archive = join(base, `.${commit}-${process.pid}.tar`);
  await git(["archive", "--format=tar", "-o", archive, commit]);
  await execFileP("tar", ["-xf", archive, "-C", tmp]);
  rmSync(archive, { force: true });
  await execFileP("touch", [join(tmp, ".complete")]);
  try {
    renameSync(tmp, dir);
  } catch (err) {
    // another run extracted the same commit meanwhile
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(dir, ".complete"))) throw err;
  }
  return dir;
}

/** Checks out the previous release and builds (or finds cached) its image. */
export async function previousRelease(ref?: string): Promise<PreviousRelease> {
  const asked = ref ?? process.env.WEFT_UPGRADE_FROM ?? (await beforeLastMerge());
  const commit = await previousCommit(asked);
  const dir = await checkout(commit);
  const image = await buildWeftImageFrom(dir, PREVIOUS_REPOSITORY);
  return { ref: asked, commit, dir, image };
}
