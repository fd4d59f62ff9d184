import { buildImages } from "./build.js";

/**
 * `make images`: makes (or finds cached) every image a real-node cluster imports and says how
 * long each took; 0 s means its inputs were unchanged and the cached archive was used.
 */
async function main(): Promise<void> {
  const t0 = Date.now();
  const set = await buildImages();
  for (const img of set.all)
    console.log(`${img.ref.padEnd(60)} ${img.seconds.toFixed(1).padStart(6)} s  ${img.archive}`);
  console.log(`images ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main().catch((err: unknown) => {
  console.error(`images: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
