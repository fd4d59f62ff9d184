import { execFile } from "node:child_process";
import { existsSync, mkdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { withLock } from "../containers/lock.js";
import { type BuiltImage, imagesDir } from "../images/build.js";
import { stamp } from "../images/recipes.js";
import { pruneNewest } from "../images/store.js";
import { alive, startDetached, stopPid, waitFor } from "../procs.js";
import { systemTool } from "../tools.js";

const execFileP = promisify(execFile);

/**
 * Importing the images into every node's containerd costs ~45 s a node on these machines
 * (unpacking into overlayfs snapshots). Instead the images are imported once into a template
 * containerd root, cached by the stamps of the archives, and each node starts from a copy whose
 * files are hard links (layers are read-only lower directories; containers write to snapshots of
 * their own). Only the two bolt databases, which containerd writes, are real copies.
 */

const WRITTEN_FILES = [
  "io.containerd.metadata.v1.bolt/meta.db",
  "io.containerd.snapshotter.v1.overlayfs/metadata.db",
];

async function run(cmd: string, args: string[]): Promise<void> {
  try {
    await execFileP(cmd, args, { maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")}: ${e.stderr?.trim() || e.message}`);
  }
}

/** Templates kept: the current one, and one more for a checkout on other sources sharing the cache. */
const KEEP_TEMPLATES = 3;

/**
 * A containerd root holding every image, imported and unpacked; made when the images changed.
 * It is made in two steps, each cached: every image but the last (the ones that rarely change),
 * then a copy of that with the last image (Weft's, which changes with every change to its code)
 * imported on top, so a new Weft image costs one import, not all of them.
 */
export function templateRoot(images: BuiltImage[]): Promise<string> {
  return withLock(join(imagesDir, "template.lock"), async () => {
    const stable = images.filter((i) => !i.ref.startsWith("localhost/weft:"));
    const weft = images.filter((i) => i.ref.startsWith("localhost/weft:"));
    const base = await makeTemplateRoot(undefined, stable);
    return weft.length ? makeTemplateRoot(base, weft) : base;
  });
}

async function makeTemplateRoot(parent: string | undefined, images: BuiltImage[]): Promise<string> {
  const containerd = systemTool("/usr/bin/containerd", "containerd");
  const ctr = systemTool("/usr/bin/ctr", "containerd");
  const key = stamp(["containerd-template-2", parent ?? "", ...images.map((i) => i.archive)]);
  const root = join(imagesDir, `containerd-root-${key}`);
  if (existsSync(join(root, ".complete"))) {
    const now = new Date();
    utimesSync(root, now, now); // most recently used: kept by the pruning below
    return root;
  }
  const work = join(imagesDir, `.containerd-work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  if (parent) await copyRoot(parent, join(work, "root"));
  const sock = join(work, "containerd.sock");
  const config = join(work, "config.toml");
  writeFileSync(
    config,
    `version = 2
root = "${join(work, "root")}"
state = "${join(work, "state")}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "${sock}"
[ttrpc]
  address = "${sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${join(work, "opt")}"
`,
  );
  const pid = startDetached(containerd, ["--config", config], join(work, "containerd.log")).pid;
  try {
    await waitFor(
      "the template containerd's socket",
      () => {
        if (!alive(pid)) throw new Error(`containerd exited; see ${join(work, "containerd.log")}`);
        return existsSync(sock) ? true : undefined;
      },
      30_000,
      50,
    );
    for (const img of images)
      await run(ctr, [
        "-a",
        sock,
        "-n",
        "k8s.io",
        "images",
        "import",
        "--snapshotter",
        "overlayfs",
        img.archive,
      ]);
  } finally {
    await stopPid(pid, 10_000);
  }
  rmSync(root, { recursive: true, force: true });
  await run("mv", [join(work, "root"), root]);
  writeFileSync(join(root, ".complete"), "");
  rmSync(work, { recursive: true, force: true });
  pruneNewest(imagesDir, (f) => f.startsWith("containerd-root-"), KEEP_TEMPLATES);
  return root;
}

/** A node's containerd root as a hard-linked copy of the template (the written databases copied). */
export async function copyRoot(template: string, dest: string): Promise<void> {
  mkdirSync(join(dest, ".."), { recursive: true });
  await run("cp", ["-al", template, dest]);
  for (const f of WRITTEN_FILES) {
    const path = join(dest, f);
    if (!existsSync(path)) continue;
    rmSync(path);
    await run("cp", ["--preserve=mode", join(template, f), path]);
  }
}
