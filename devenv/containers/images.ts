import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import { tool } from "../tools.js";
import { buildah, commit, imageExists, imageTags, removeImages } from "./buildah.js";
import { buildDebianImage, type DebianImageSpec, debianStampInputs } from "./debian-image.js";
import { withLock } from "./lock.js";
import { weftCache } from "./podman.js";

/**
 * The images tests start, built locally (nothing can be pulled) into Weft's image store and
 * tagged with a stamp of their inputs: a run rebuilds an image only when an input changed.
 */
export type ImageName = "etcd" | "frr";

interface Recipe {
  repo: string;
  /** Everything the image is made from, as text; its hash is the tag. */
  inputs(): string;
  build(ref: string): Promise<void>;
}

/** Bumped when a recipe changes in a way its inputs do not show. */
const RECIPE_VERSION = "1";

export function stampOf(inputs: string): string {
  return createHash("sha256").update(`${RECIPE_VERSION}\n${inputs}`).digest("hex").slice(0, 16);
}

/** True when the ELF file asks for no program interpreter (runs on a scratch image). */
export function isStaticElf(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(64);
    readSync(fd, head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2)
      throw new Error(`${path} is not a 64-bit ELF file`);
    const phoff = Number(head.readBigUInt64LE(0x20));
    const phentsize = head.readUInt16LE(0x36);
    const phnum = head.readUInt16LE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    const PT_INTERP = 3;
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === PT_INTERP) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

const ETCD_IMAGE = { entrypoint: ["/usr/local/bin/etcd"], path: "/usr/local/bin/etcd" };

const etcd: Recipe = {
  repo: "localhost/weft-etcd",
  inputs: () => {
    const bin = tool("etcd");
    if (!isStaticElf(bin)) {
      throw new Error(
        `${bin} is dynamically linked and cannot run on a scratch image: rebuild it with 'make tools' (etcd is built with CGO_ENABLED=0)`,
      );
    }
    return JSON.stringify({ etcd: createHash("sha256").update(readFileSync(bin)).digest("hex"), ETCD_IMAGE });
  },
  build: async (ref) => {
    const c = await buildah(["from", "--quiet", "scratch"]);
    try {
      await buildah(["copy", "--quiet", "--chmod", "755", c, tool("etcd"), ETCD_IMAGE.path]);
      await buildah(["config", "--entrypoint", JSON.stringify(ETCD_IMAGE.entrypoint), c]);
      await commit(c, ref);
    } catch (err) {
      await buildah(["rm", c]).catch(() => {});
      throw err;
    }
  },
};

/**
 * FRR as Debian ships it. The entrypoint starts the daemons the way Debian's service does
 * (watchfrr supervising zebra, staticd, bgpd and bfdd, which BGP sessions with `bfd` need) and
 * stays in the foreground until stopped.
 */
const FRR_SPEC: Omit<DebianImageSpec, "ref"> = {
  packages: ["frr"],
  files: [
    {
      path: "/usr/local/bin/weft-frr",
      mode: 0o755,
      content: [
        "#!/bin/sh",
        "set -e",
        "/usr/lib/frr/frrinit.sh start",
        "trap '/usr/lib/frr/frrinit.sh stop; exit 0' TERM INT",
        "while :; do sleep 3600 & wait $!; done",
        "",
      ].join("\n"),
    },
    {
      // bgpd and bfdd on; every vty only on the namespace's loopback
      path: "/etc/frr/daemons",
      content: [
        "bgpd=yes",
        "bfdd=yes",
        "vtysh_enable=yes",
        'zebra_options="-A 127.0.0.1"',
        'bgpd_options="-A 127.0.0.1"',
        'staticd_options="-A 127.0.0.1"',
        'bfdd_options="-A 127.0.0.1"',
        "",
      ].join("\n"),
    },
    { path: "/etc/frr/vtysh.conf", content: "service integrated-vtysh-config\n" },
  ],
  entrypoint: ["/usr/local/bin/weft-frr"],
};

const frr: Recipe = {
  repo: "localhost/weft-frr",
  inputs: () => debianStampInputs(FRR_SPEC),
  build: (ref) => buildDebianImage({ ref, ...FRR_SPEC }),
};

const RECIPES: Record<ImageName, Recipe> = { etcd, frr };
export const IMAGE_NAMES = Object.keys(RECIPES) as ImageName[];

/** Older stamps kept per image, so that a run still using one is not pulled from under it. */
const KEEP = 2;

/**
 * Builds the images whose stamp is not in the store yet; returns their references. One builder at
 * a time across checkouts; prints one line per image (built, with the time it took, or cached).
 */
export async function ensureImages(
  names: ImageName[] = IMAGE_NAMES,
  log: (line: string) => void = console.log,
): Promise<Record<ImageName, string>> {
  const refs = {} as Record<ImageName, string>;
  for (const name of names) {
    const recipe = RECIPES[name];
    const ref = `${recipe.repo}:${stampOf(recipe.inputs())}`;
    refs[name] = ref;
    if (await imageExists(ref)) {
      log(`# image ${ref} cached`);
      continue;
    }
    await withLock(join(weftCache, "containers", "build.lock"), async () => {
      if (await imageExists(ref)) return;
      const t0 = Date.now();
      await recipe.build(ref);
      log(`# image ${ref} built in ${Date.now() - t0} ms`);
      await removeImages((await imageTags(recipe.repo)).filter((r) => r !== ref).slice(KEEP - 1));
    });
  }
  return refs;
}
