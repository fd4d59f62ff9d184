import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { e2eRepoList } from "../images/recipes.js";
import { tool } from "../tools.js";

/**
 * Kubernetes' own end-to-end suite (e2e.test, run by ginkgo) against a real-node cluster, with
 * every image it starts remapped to the ones made here (KUBE_TEST_REPO_LIST). The pure parts
 * (skip list, arguments, ginkgo's summary) are apart from the one function that runs it.
 */

/** A spec pattern that is not run, and why. */
export interface SkipEntry {
  /** A regular expression over the spec's full text (ginkgo --skip). */
  pattern: string;
  reason: string;
}

/**
 * Reads a skip list: one entry a line, `<regular expression> -- <reason>`; `#` starts a comment
 * line. An entry without a reason, or a pattern that is not a valid regular expression, is an error.
 */
export function parseSkipList(text: string): SkipEntry[] {
  const out: SkipEntry[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const sep = line.indexOf(" -- ");
    const pattern = sep < 0 ? line : line.slice(0, sep).trim();
    const reason = sep < 0 ? "" : line.slice(sep + 4).trim();
    if (!reason) throw new Error(`skip list line ${i + 1}: '${line}' gives no reason (pattern -- reason)`);
    try {
      new RegExp(pattern);
    } catch (err) {
      throw new Error(`skip list line ${i + 1}: ${(err as Error).message}`);
    }
    out.push({ pattern, reason });
  });
  return out;
}

/** Escapes a spec's text for ginkgo's --focus (a regular expression). */
export function specPattern(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export interface E2EOptions {
  kubeconfig: string;
  /** Regular expressions; a spec runs when it matches any (ginkgo --focus). */
  focus: string[];
  skip: SkipEntry[];
  /** Parallel ginkgo processes. */
  parallel: number;
  /** Where the repo list, JUnit report and the full log go. */
  reportDir: string;
  nodes: number;
  /** Whole-run limit for ginkgo (e.g. "2h"). */
  timeout: string;
  /** Ends the run early: ginkgo and its e2e.test processes are stopped (the caller is shutting down). */
  signal?: AbortSignal;
}

/** ginkgo's command line for the precompiled e2e.test, and the environment it needs. */
export function e2eCommand(
  o: E2EOptions,
  paths: { ginkgo: string; e2eTest: string; kubectl: string; repoList: string },
): { cmd: string; args: string[]; env: Record<string, string> } {
  const args = [
    `--procs=${o.parallel}`,
    `--timeout=${o.timeout}`,
    "--no-color",
    "--poll-progress-after=10m",
    ...o.focus.map((f) => `--focus=${f}`),
    ...o.skip.map((s) => `--skip=${s.pattern}`),
    paths.e2eTest,
    "--",
    `--kubeconfig=${o.kubeconfig}`,
    `--kubectl-path=${paths.kubectl}`,
    // no cloud, no SSH to nodes: specs that need either skip themselves
    "--provider=skeleton",
    `--num-nodes=${o.nodes}`,
    `--report-dir=${o.reportDir}`,
    "--disable-log-dump",
    "--dns-domain=cluster.local",
    // images are imported into every node by the harness, never pulled
    "--prepull-images=false",
  ];
  return { cmd: paths.ginkgo, args, env: { KUBE_TEST_REPO_LIST: paths.repoList } };
}

export interface GinkgoSummary {
  ran: number;
  total: number;
  passed: number;
  failed: number;
  pending: number;
  skipped: number;
  flaked: number;
  seconds: number;
  /** The `[FAIL]` lines of the summary: one per failed spec. */
  failures: string[];
}

/**
 * ginkgo's closing summary, e.g. "Ran 12 of 6626 Specs in 301.2 seconds" and
 * "FAIL! -- 11 Passed | 1 Failed | 0 Pending | 6614 Skipped"; undefined when the run printed none
 * (it died before the end). With several processes the counts appear once, in the aggregate.
 */
export function parseGinkgoSummary(output: string): GinkgoSummary | undefined {
  const ran = [...output.matchAll(/^Ran (\d+) of (\d+) Specs? in ([\d.]+) seconds/gm)].pop();
  const counts = [
    ...output.matchAll(
      /(?:SUCCESS!|FAIL!)[^\n]*?-- (\d+) Passed \| (\d+) Failed \|(?: (\d+) Flaked \|)? (\d+) Pending \| (\d+) Skipped/g,
    ),
  ].pop();
  if (!ran || !counts) return undefined;
  const summaryStart = output.lastIndexOf("Summarizing");
  const failures =
    summaryStart < 0
      ? []
      : output
          .slice(summaryStart)
          .split("\n")
          .filter((l) => /^\s*\[FAIL\]/.test(l))
          .map((l) => l.trim());
  return {
    ran: Number(ran[1]),
    total: Number(ran[2]),
    seconds: Number(ran[3]),
    passed: Number(counts[1]),
    failed: Number(counts[2]),
    flaked: Number(counts[3] ?? 0),
    pending: Number(counts[4]),
    skipped: Number(counts[5]),
    failures,
  };
}

/** The lines of ginkgo's output worth printing at the end: from "Summarizing" (or "Ran N of M") on. */
export function summaryText(output: string): string {
  const at = output.lastIndexOf("Summarizing");
  const from = at >= 0 ? at : output.lastIndexOf("\nRan ");
  return from >= 0 ? output.slice(from).trim() : "";
}

export interface E2EResult {
  exitCode: number;
  summary: GinkgoSummary | undefined;
  /** Everything ginkgo printed (also in reportDir/e2e.log). */
  output: string;
  logFile: string;
}

/**
 * Runs the suite; ginkgo's output goes to reportDir/e2e.log and, line by line, to `echo` (pass
 * a no-op to stay quiet). Resolves with the exit code and the parsed summary, whatever the outcome.
 */
export async function runE2E(o: E2EOptions, echo: (line: string) => void = () => {}): Promise<E2EResult> {
  mkdirSync(o.reportDir, { recursive: true });
  const repoList = join(o.reportDir, "repo-list.yaml");
  writeFileSync(repoList, e2eRepoList());
  const { cmd, args, env } = e2eCommand(o, {
    ginkgo: tool("ginkgo"),
    e2eTest: tool("e2e.test"),
    kubectl: tool("kubectl"),
    repoList,
  });
  const logFile = join(o.reportDir, "e2e.log");
  const log = createWriteStream(logFile);
  log.write(`$ ${cmd} ${args.map((a) => JSON.stringify(a)).join(" ")}\n`);
  // its own process group: stopping the run stops ginkgo's e2e.test processes with it
  const child = spawn(cmd, args, {
    cwd: o.reportDir,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const stopGroup = () => {
    try {
      if (child.pid) process.kill(-child.pid, "SIGTERM");
    } catch {
      /* ended already */
    }
  };
  if (o.signal?.aborted) stopGroup();
  o.signal?.addEventListener("abort", stopGroup, { once: true });
  let pending = "";
  const onData = (chunk: Buffer) => {
    log.write(chunk);
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const l of lines) echo(l);
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  }).finally(() => o.signal?.removeEventListener("abort", stopGroup));
  if (pending) echo(pending);
  await new Promise<void>((resolve) => log.end(resolve));
  const output = readFileSync(logFile, "utf8");
  return { exitCode, summary: parseGinkgoSummary(output), output, logFile };
}
