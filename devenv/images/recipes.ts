import { createHash } from "node:crypto";

/**
 * What the images of real-node clusters are made of, and the stamps that say when one must be
 * rebuilt. Nothing can be pulled on these machines, so every image is made here: from binaries
 * built from the Go module proxy, a Debian rootfs from the apt mirror (mmdebstrap, debian.ts),
 * the Node.js runtime from the npm registry, and Weft's own Dockerfile. No I/O here.
 */

/**
 * Where the images upstream's e2e framework names are kept here. Made locally, they carry local
 * names (nothing under them can be pulled, so a name never looks like a registry that answers);
 * the e2e suite is pointed at them through KUBE_TEST_REPO_LIST (e2eRepoList).
 */
export const LOCAL_E2E_REGISTRY = "localhost/e2e-test-images";
export const LOCAL_K8S_REGISTRY = "localhost/k8s";
export const LOCAL_BUILD_IMAGE_REGISTRY = "localhost/build-image";

/** The sandbox image: containerd's `sandbox_image`, and the e2e framework's pause. */
export const PAUSE_IMAGE = `${LOCAL_K8S_REGISTRY}/pause:3.10`;
/** agnhost with the version the v1.32 e2e framework expects (test/utils/image/manifest.go). */
export const AGNHOST_IMAGE = `${LOCAL_E2E_REGISTRY}/agnhost:2.53`;
/** The Debian base that test images with shell tools start from (a stand-in for upstream's Alpine base). */
export const DEBIAN_TOOLS_IMAGE = "localhost/weft-debian-tools:bookworm";
/** Repository of Weft's image as built from the Dockerfile; the tag is the stamp of its inputs. */
export const WEFT_REPOSITORY = "localhost/weft";

export const DEBIAN_SUITE = "bookworm";
/**
 * What debian:bookworm-slim leaves out (dpkg path filters). They stay in the image's dpkg
 * configuration, so packages installed later by a Dockerfile are slimmed the same way.
 */
export const SLIM_DPKG_OPTIONS = [
  "path-exclude=/usr/share/man/*",
  "path-exclude=/usr/share/info/*",
  "path-exclude=/usr/share/groff/*",
  "path-exclude=/usr/share/lintian/*",
  "path-exclude=/usr/share/linda/*",
  "path-exclude=/usr/share/locale/*",
  "path-exclude=/usr/share/doc/*",
  "path-include=/usr/share/doc/*/copyright",
];

/**
 * The tools upstream's agnhost image adds to its Alpine base (bind-tools, curl, netcat-openbsd,
 * iproute2, iperf, bash), as Debian packages; the e2e specs call them through `kubectl exec`.
 */
export const DEBIAN_TOOLS_PACKAGES = [
  "bash",
  "bind9-dnsutils",
  "ca-certificates",
  "curl",
  "iperf",
  "iproute2",
  "iputils-ping",
  "netcat-openbsd",
  "procps",
  "wget",
  // for the other e2e images made from the same rootfs (E2E_IMAGES): one mmdebstrap serves all
  "busybox",
  "conntrack",
  "iptables",
  "nginx-light",
];

/**
 * The other images the [sig-network] specs run, each a layer over the Debian tools image with
 * what upstream's image has at its heart (test/images/<name>/Dockerfile at v1.32): the spec
 * calls these tools through `kubectl exec` or as the container's command.
 */
export interface E2EImage {
  ref: string;
  /** Run in the image at build time (/bin/sh -c). */
  setup?: string;
  entrypoint?: string[];
  cmd?: string[];
  ports?: number[];
}

export const E2E_IMAGES: readonly E2EImage[] = [
  {
    // Debian with dnsutils (dig), as upstream's; the DNS specs' "jessie" prober
    ref: `${LOCAL_E2E_REGISTRY}/jessie-dnsutils:1.7`,
    cmd: ["/bin/sh"],
  },
  {
    // busybox's applets first on the PATH, every one of them (nc, wget, sh ... as busybox has them)
    ref: `${LOCAL_E2E_REGISTRY}/busybox:1.36.1-1`,
    setup: "set -eu; mkdir -p /usr/local/bin; /bin/busybox --install -s /usr/local/bin",
    cmd: ["sh"],
  },
  {
    // nginx serving its default page on port 80, in the foreground
    ref: `${LOCAL_E2E_REGISTRY}/nginx:1.14-4`,
    cmd: ["nginx", "-g", "daemon off;"],
    ports: [80],
  },
  {
    // iptables and conntrack for privileged hostNetwork pods that read the node's tables
    ref: `${LOCAL_BUILD_IMAGE_REGISTRY}/distroless-iptables:v0.7.15`,
    cmd: ["/bin/sh"],
  },
];

/** upstream's regression test for conntrack's invalid state (issue 74839): its binary on the tools image */
export const REGRESSION_74839_IMAGE = `${LOCAL_E2E_REGISTRY}/regression-issue-74839:1.2`;

/** Upstream's registries, as KUBE_TEST_REPO_LIST names them, pointed at the local images. */
export function e2eRepoList(): string {
  return [
    `promoterE2eRegistry: ${LOCAL_E2E_REGISTRY}`,
    `gcRegistry: ${LOCAL_K8S_REGISTRY}`,
    `gcEtcdRegistry: ${LOCAL_K8S_REGISTRY}`,
    `buildImageRegistry: ${LOCAL_BUILD_IMAGE_REGISTRY}`,
    "dockerLibraryRegistry: localhost/library",
    "sigStorageRegistry: localhost/sig-storage",
    "cloudProviderGcpRegistry: localhost/cloud-provider-gcp",
    "",
  ].join("\n");
}

/**
 * The npm release bundled with each Node.js release the base image may pin (from that release's
 * changelog), so that the local node image carries the npm the official one does.
 */
export const BUNDLED_NPM: Record<string, string> = {
  "24.22.3": "11.19.1",
};

export interface NodeBase {
  /** The image reference the Dockerfile names, e.g. node:24.22.3-bookworm-slim. */
  ref: string;
  /** Fully qualified, as buildah stores it: docker.io/library/node:24.22.3-bookworm-slim. */
  qualified: string;
  nodeVersion: string;
  npmVersion: string;
  suite: string;
}

/**
 * The official node image a Dockerfile's `ARG NODE_IMAGE=node:X.Y.Z-SUITE-slim` names, and what
 * makes it: that Node.js release and its npm on Debian SUITE. Only exact slim tags can be made
 * faithfully (a floating tag like node:24-slim has no one release to build from).
 */
export function nodeBaseFor(ref: string): NodeBase {
  const m = /^(?:docker\.io\/)?(?:library\/)?node:(\d+\.\d+\.\d+)-(\w+)-slim$/.exec(ref);
  if (!m) throw new Error(`cannot make base image ${ref}: expected node:X.Y.Z-SUITE-slim`);
  const [, nodeVersion, suite] = m as unknown as [string, string, string];
  if (suite !== DEBIAN_SUITE) throw new Error(`cannot make base image ${ref}: only ${DEBIAN_SUITE} is known`);
  const npmVersion = BUNDLED_NPM[nodeVersion];
  if (!npmVersion)
    throw new Error(
      `cannot make base image ${ref}: the npm bundled with Node.js ${nodeVersion} is not recorded in BUNDLED_NPM`,
    );
  return {
    ref,
    qualified: `docker.io/library/node:${nodeVersion}-${suite}-slim`,
    nodeVersion,
    npmVersion,
    suite,
  };
}

/** A short, stable hash of the inputs of an image; the cached archive is named after it. */
export function stamp(parts: ReadonlyArray<string | Buffer>): string {
  const h = createHash("sha256");
  for (const p of parts) {
    h.update(p);
    h.update("\0");
  }
  return h.digest("hex").slice(0, 16);
}

/** A file name for an image reference: registry.k8s.io/pause:3.10 -> registry.k8s.io_pause_3.10. */
export function archiveName(ref: string, stampHex: string): string {
  return `${ref.replace(/[/:@]/g, "_")}-${stampHex}.oci.tar`;
}

/**
 * The apt configuration, users and files of node:*-slim beyond the Debian rootfs: the node user
 * (uid 1000) and npm/npx on the PATH as symlinks into npm's package, as the official image has them.
 */
export function nodeBaseSetupScript(npmDir = "/usr/local/lib/node_modules/npm"): string {
  return [
    "set -eu",
    "groupadd --gid 1000 node",
    "useradd --uid 1000 --gid node --shell /bin/bash --create-home node",
    `ln -sf ${npmDir}/bin/npm-cli.js /usr/local/bin/npm`,
    `ln -sf ${npmDir}/bin/npx-cli.js /usr/local/bin/npx`,
    "node --version && npm --version",
  ].join("\n");
}

/** Setup of the agnhost image beyond its binary, as upstream's Dockerfile does it. */
export function agnhostSetupScript(): string {
  return [
    "set -eu",
    "mkdir -p /uploads",
    "ln -sf agnhost /agnhost-2",
    "useradd --uid 1000 --no-create-home user-defined-in-image",
    "groupadd --gid 50000 group-defined-in-image",
    "usermod -a -G group-defined-in-image user-defined-in-image",
  ].join("\n");
}

/** The default of a global `ARG NAME=value` of a Dockerfile. */
export function dockerfileArg(dockerfile: string, name: string): string | undefined {
  const m = new RegExp(`^ARG\\s+${name}=(\\S+)\\s*$`, "m").exec(dockerfile);
  return m?.[1];
}

/** The build-context paths a Dockerfile's COPY instructions read (not those copied --from a stage). */
export function copySources(dockerfile: string): string[] {
  const out = new Set<string>();
  for (const line of dockerfile.split("\n")) {
    const m = /^COPY\s+(.*)$/i.exec(line.trim());
    if (!m || /--from=/.test(m[1] as string)) continue;
    const words = (m[1] as string).split(/\s+/).filter((w) => !w.startsWith("--"));
    for (const w of words.slice(0, -1)) out.add(w.replace(/^\.\//, "").replace(/\/$/, ""));
  }
  return [...out].sort();
}
