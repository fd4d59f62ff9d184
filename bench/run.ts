import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../devenv/index.js";

/**
 * `make bench [BENCH=name]`: runs each benchmark (each compares Weft with its peer in the same run
 * and ends with one JSON line), one after the other so they do not share the two cores, and
 * writes every result with the date and the machine to .weft/bench/results.json.
 */
const ALL = ["dataplane", "ipam", "join", "fanout", "cni", "bgp", "bgp-secrets", "containers", "podstart"];

function run(name: string): Promise<unknown> {
  const script = join(repoRoot, "dist", "bench", name, "main.js");
  if (!existsSync(script)) return Promise.resolve({ bench: name, error: `no ${script} (run 'make build')` });
  return new Promise((resolveResult) => {
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"], cwd: repoRoot });
    let last = "";
    child.stdout.on("data", (d: Buffer) => {
      process.stdout.write(d);
      const lines = d.toString().trim().split("\n");
      for (const l of lines) if (l.startsWith("{")) last = l;
    });
    child.on("close", (code) => {
      try {
        resolveResult(JSON.parse(last));
      } catch {
        resolveResult({ bench: name, error: `exit ${code}, no JSON result line` });
      }
    });
  });
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter(Boolean);
  const names = wanted.length ? wanted : ALL;
  const machine = {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadavgAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
  const results: Record<string, unknown> = {};
  for (const name of names) {
    console.log(`\n=== bench/${name}`);
    results[name] = await run(name);
  }
  const out = { date: new Date().toISOString(), machine, results };
  mkdirSync(join(repoRoot, ".weft", "bench"), { recursive: true });
  writeFileSync(join(repoRoot, ".weft", "bench", "results.json"), JSON.stringify(out, null, 2));
  console.log(`\nresults written to .weft/bench/results.json`);
  console.log(JSON.stringify(out));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
