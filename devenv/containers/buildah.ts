import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { imageStore, NO_REGISTRY_ENV, REGISTRIES_CONF, run, weftCache } from "./podman.js";

/**
 * buildah on Weft's image store (never the machine's): every image a test uses is built here
 * from local inputs, since nothing can be pulled.
 */
const confDir = join(weftCache, "containers", "conf");

/** Runtime state of the store's mounts: tmpfs, so that it does not outlive a reboot. */
const runRoot = "/run/weft-containers";

function buildEnv(): NodeJS.ProcessEnv {
  mkdirSync(confDir, { recursive: true });
  const storage = join(confDir, "storage.conf");
  const registries = join(confDir, "registries.conf");
  writeFileSync(
    storage,
    `[storage]\ndriver = "overlay"\ngraphroot = ${JSON.stringify(imageStore)}\nrunroot = ${JSON.stringify(runRoot)}\n`,
  );
  writeFileSync(registries, REGISTRIES_CONF);
  return {
    ...process.env,
    ...NO_REGISTRY_ENV,
    CONTAINERS_STORAGE_CONF: storage,
    CONTAINERS_REGISTRIES_CONF: registries,
  };
}

let env: NodeJS.ProcessEnv | undefined;

/** Runs buildah against the image store; stdout trimmed. */
export async function buildah(args: string[]): Promise<string> {
  env ??= buildEnv();
  return (await run("buildah", args, env, { timeoutMs: 15 * 60_000 })).trim();
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
