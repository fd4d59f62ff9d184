import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { buildDebianImage, type DebianImageSpec, debianImageInputs } from "../images/debian.js";
import { buildah, buildFrom, ensureImage, type ImageRecipe } from "../images/store.js";
import { tool } from "../tools.js";

/**
 * The images tests start (etcd, an FRR router), made in the project's one image store
 * (devenv/images/store.ts) and tagged with a stamp of their inputs: a run rebuilds an image only
 * when an input changed.
 */
export type ImageName = "etcd" | "frr";

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

function etcdRecipe(): ImageRecipe {
  const bin = tool("etcd");
  if (!isStaticElf(bin)) {
    throw new Error(
      `${bin} is dynamically linked and cannot run on a scratch image: rebuild it with 'make tools' (etcd is built with CGO_ENABLED=0)`,
    );
  }
  return {
    repo: "localhost/weft-etcd",
    inputs: [createHash("sha256").update(readFileSync(bin)).digest("hex"), JSON.stringify(ETCD_IMAGE)],
    build: (ref) =>
      buildFrom("scratch", ref, async (c) => {
        await buildah(["copy", "--quiet", "--chmod", "755", c, bin, ETCD_IMAGE.path]);
        await buildah(["config", "--entrypoint", JSON.stringify(ETCD_IMAGE.entrypoint), c]);
      }),
  };
}

/**
 * FRR as Debian ships it. The entrypoint starts the daemons the way Debian's service does
 * (watchfrr supervising zebra, staticd, bgpd and bfdd, which BGP sessions with `bfd` need) and
 * stays in the foreground until stopped.
 */
const FRR_SPEC: DebianImageSpec = {
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

function frrRecipe(): ImageRecipe {
  return {
    repo: "localhost/weft-frr",
    inputs: debianImageInputs(FRR_SPEC),
    build: (ref) => buildDebianImage(FRR_SPEC, ref),
  };
}

const RECIPES: Record<ImageName, () => ImageRecipe> = { etcd: etcdRecipe, frr: frrRecipe };
export const IMAGE_NAMES = Object.keys(RECIPES) as ImageName[];

/**
 * Builds the images whose stamp is not in the store yet; returns their references. Prints one
 * line per image (built, with the time it took, or cached).
 */
export async function ensureImages(
  names: ImageName[] = IMAGE_NAMES,
  log: (line: string) => void = console.log,
): Promise<Record<ImageName, string>> {
  const refs = {} as Record<ImageName, string>;
  for (const name of names) {
    const image = await ensureImage(RECIPES[name](), log);
    if (image.seconds === 0) log(`# image ${image.ref} cached`);
    refs[name] = image.ref;
  }
  return refs;
}
