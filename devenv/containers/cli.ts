import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../tools.js";
import {
  type EngineState,
  engineEnv,
  readEngineState,
  reapEngines,
  startEngine,
  stopEngine,
} from "./engine.js";
import { ensureImages, IMAGE_NAMES, type ImageName } from "./images.js";
import { CONTAINERS_ENV, containersMode } from "./mode.js";

/**
 * `make images`: build the test images. `make engine-up` / `make engine-down`: an engine that
 * outlives the command, for running single test files by hand (what `make test` does itself):
 * `eval "$(make -s engine-up)"` sets DOCKER_HOST and WEFT_ENGINE_STATE in the shell.
 */
const pointer = join(repoRoot, ".weft", "engine");

async function main(cmd: string | undefined, args: string[]): Promise<void> {
  if (cmd === "images" && containersMode() === "off") {
    console.log(`# ${CONTAINERS_ENV}=off: no test images needed`);
  } else if (cmd === "images") {
    const names = args.length ? (args as ImageName[]) : IMAGE_NAMES;
    for (const n of names)
      if (!IMAGE_NAMES.includes(n)) throw new Error(`unknown image ${n}: ${IMAGE_NAMES.join(", ")}`);
    await ensureImages(names);
  } else if (cmd === "up") {
    const reaped = await reapEngines();
    if (reaped) console.log(`# reaped ${reaped} engine(s) left by an earlier run`);
    const state = await startEngine({ images: await ensureImages() });
    mkdirSync(pointer, { recursive: true });
    writeFileSync(join(pointer, "dir"), state.dir);
    for (const [k, v] of Object.entries(engineEnv(state))) console.log(`export ${k}=${v}`);
  } else if (cmd === "down") {
    let state: EngineState | undefined;
    try {
      state = readEngineState(readFileSync(join(pointer, "dir"), "utf8").trim());
    } catch {
      state = undefined;
    }
    if (state) await stopEngine(state);
    rmSync(pointer, { recursive: true, force: true });
    console.log(state ? `engine at ${state.socket} stopped` : "no engine was up");
  } else {
    console.error("usage: cli.js images [etcd|frr...] | up | down");
    process.exitCode = 2;
  }
}

main(process.argv[2], process.argv.slice(3)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
