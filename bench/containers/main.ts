/**
 * Containers benchmark: what starting test servers through the container engine costs next to
 * the local binaries, in the same run.
 *
 * 1. images: ensureImages() with every stamp cached (a warm `make test`); a cold build is timed by
 *    `make images` on an empty store and printed there.
 * 2. engine: podman's API service started until it answers, and stopped with its cleanup.
 * 3. etcd: start until `etcdctl endpoint health` answers, then stop, --rounds times each, as a
 *    container (testcontainers) and as the local binary. Peer: the local binary.
 * 4. frr: a container in a fresh namespace until bgpd answers vtysh.
 *
 * Flags: --rounds N (5). Last line of output: one JSON object with the results.
 */
import { parseArgs } from "node:util";
import { EtcdContainer, ensureImages, ip, startFrr, startRunEngine, TestEtcd } from "../../devenv/index.js";
import { type Headline, loadAverage } from "../proc.js";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" } } });
const rounds = Number(values.rounds);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await fn();
  return [v, performance.now() - t0];
}

async function main(): Promise<void> {
  const [, imagesWarmMs] = await timed(() => ensureImages(undefined, () => {}));
  const [engine, engineStartMs] = await timed(() => startRunEngine(process.pid, () => {}));
  Object.assign(process.env, engine.env);
  const ns = `wbench${process.pid}-frr`;
  try {
    const container: number[] = [];
    const binary: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const [c, cMs] = await timed(() => EtcdContainer.start());
      await c.stop();
      container.push(cMs);
      const [b, bMs] = await timed(() => TestEtcd.start());
      await b.stop();
      binary.push(bMs);
      console.log(`etcd round ${i + 1}: container ${cMs.toFixed(0)} ms, binary ${bMs.toFixed(0)} ms`);
    }
    await ip(["netns", "add", ns]);
    const [frr, frrMs] = await timed(() => startFrr({ netns: ns, config: "router bgp 65010\n" }));
    await frr.stop();
    const [, engineStopMs] = await timed(() => engine.teardown());
    const etcdContainerMs = median(container);
    const etcdBinaryMs = median(binary);
    const ratio = Number((etcdContainerMs / etcdBinaryMs).toFixed(2));
    const headline: Headline = {
      metric: `etcd for a test, as a container: start until healthy plus stop, median of ${rounds}, as a ratio to the peer`,
      value: ratio,
      // no target in the design: the cost a test pays for a container, kept in view
      target: null,
      unit: "ratio",
      peer: "the local etcd binary, started and stopped the same way in the same run",
    };
    console.log(
      `headline: etcd container ${Math.round(etcdContainerMs)} ms vs binary ${Math.round(etcdBinaryMs)} ms, ratio ${ratio} (no target: informational)`,
    );
    console.log(
      "timed span: from the start call until `etcdctl endpoint health` answers, then the stop call until it returns; the engine already runs and the images are built.",
    );
    console.log(
      JSON.stringify({
        bench: "containers",
        rounds,
        imagesWarmMs: Math.round(imagesWarmMs),
        engineStartMs: Math.round(engineStartMs - imagesWarmMs),
        engineStopMs: Math.round(engineStopMs),
        etcdContainerMs: Math.round(etcdContainerMs),
        etcdBinaryMs: Math.round(etcdBinaryMs),
        ratio,
        frrContainerMs: Math.round(frrMs),
        loadavgAfter: loadAverage(),
        headline,
      }),
    );
  } finally {
    await engine.teardown();
    await ip(["netns", "del", ns]).catch(() => undefined);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
