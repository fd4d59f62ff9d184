/**
 * The measuring half of bench/cni, run inside the node's namespace (as a kubelet runs in the
 * host's), so that every plugin is exec'd directly and the same way: config on stdin, CNI_* in
 * the environment. The variants alternate pod by pod so that machine noise hits all of them.
 * Prints one JSON object: variant name -> {add: ms[], del: ms[]}.
 */
import { type ExecResult, execPlugin } from "../../devenv/index.js";

export interface Variant {
  name: string;
  binary: string;
  conf: Record<string, unknown>;
  /** one pod namespace path per pod, this variant's own */
  pods: string[];
}

interface RunnerInput {
  variants: Variant[];
  warmup: number;
  tag: string;
}

const input = JSON.parse(process.argv[2] ?? "{}") as RunnerInput;

async function timed(fn: () => Promise<ExecResult>, what: string): Promise<number> {
  const t0 = performance.now();
  const r = await fn();
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stdout}${r.stderr}`);
  return ms;
}

const lat: Record<string, { add: number[]; del: number[]; start: number[] }> = {};
for (const v of input.variants) lat[v.name] = { add: [], del: [], start: [] };
const n = input.variants[0]?.pods.length ?? 0;
const pod = (v: Variant, i: number) => ({
  containerId: `${input.tag}${v.name.replace(/\W/g, "")}${i}`,
  netns: v.pods[i],
});

for (const command of ["ADD", "DEL"] as const) {
  for (let i = 0; i < n; i++) {
    for (const v of input.variants) {
      const ms = await timed(
        () => execPlugin(v.binary, command, pod(v, i), v.conf),
        `${v.name} ${command} ${i}`,
      );
      if (i >= input.warmup) lat[v.name]![command === "ADD" ? "add" : "del"].push(ms);
    }
  }
}
// the cost of merely starting each plugin (VERSION touches nothing)
for (let i = 0; i < Math.min(n, 50); i++) {
  for (const v of input.variants) {
    lat[v.name]!.start.push(await timed(() => execPlugin(v.binary, "VERSION", pod(v, i), v.conf), "VERSION"));
  }
}
process.stdout.write(`${JSON.stringify(lat)}\n`);
