/**
 * Whether tests start their throwaway servers (etcd, FRR) as containers through testcontainers or
 * as local binaries. Containers are the default; the local path is chosen explicitly with
 * WEFT_CONTAINERS=off, never by falling back silently when the engine is missing or broken.
 */
export const CONTAINERS_ENV = "WEFT_CONTAINERS";

export type ContainersMode = "on" | "off";

export function containersMode(env: NodeJS.ProcessEnv = process.env): ContainersMode {
  const raw = (env[CONTAINERS_ENV] ?? "").trim().toLowerCase();
  if (raw === "" || raw === "on" || raw === "1" || raw === "true") return "on";
  if (raw === "off" || raw === "0" || raw === "false") return "off";
  throw new Error(`${CONTAINERS_ENV}=${env[CONTAINERS_ENV]} is not understood: use on (default) or off`);
}

/** The sentence every "the engine is wanted but not usable" error ends with. */
export const HOW_TO_FIX =
  "run 'make tools' (installs podman, buildah, runc and mmdebstrap) and run the tests with 'make test', " +
  `or set ${CONTAINERS_ENV}=off to run etcd and FRR as local binaries instead`;
