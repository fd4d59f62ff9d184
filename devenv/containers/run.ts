import { type EngineState, engineEnv, reapEngines, startEngine, stopEngine } from "./engine.js";
import { ensureImages } from "./images.js";
import { CONTAINERS_ENV, containersMode, HOW_TO_FIX } from "./mode.js";

/**
 * The container side of a test run: reaps what a killed run left, builds the images whose inputs
 * changed, starts the run's engine and says how test processes reach it. With WEFT_CONTAINERS=off
 * it does nothing and says so.
 */
export interface RunEngine {
  env: Record<string, string>;
  teardown(): Promise<void>;
}

export async function startRunEngine(ownerPid: number, log = console.log): Promise<RunEngine> {
  if (containersMode() === "off") {
    log(`# ${CONTAINERS_ENV}=off: etcd and FRR run as local binaries, not containers`);
    return { env: {}, teardown: async () => {} };
  }
  const reaped = await reapEngines();
  if (reaped) log(`# reaped ${reaped} container engine(s) left by an earlier run`);
  let images: Record<string, string>;
  try {
    images = await ensureImages(undefined, log);
  } catch (err) {
    throw new Error(`building the test images failed: ${(err as Error).message}\n${HOW_TO_FIX}`);
  }
  const t0 = Date.now();
  let state: EngineState | undefined = await startEngine({ ownerPid, images });
  log(
    `# container engine: podman ${state.podmanVersion} API service at ${state.socket} in ${Date.now() - t0} ms`,
  );
  return {
    env: engineEnv(state),
    teardown: async () => {
      const s = state;
      state = undefined;
      if (s) await stopEngine(s);
    },
  };
}
