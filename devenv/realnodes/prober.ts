import { type ChildProcess, spawn } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import { parseArgs } from "node:util";
import { echoLine, IcmpTracker, type PathStats, splitLines, TcpTracker } from "./probe.js";

/**
 * The traffic of the fault suite, from inside one pod's network namespace (started there with
 * nsenter by traffic.ts): `ping` to every target pod, a TCP connection held open to every
 * target's echo server with a numbered line each interval, and the echo server the other pods
 * connect to. Cumulative per-path counts go to stdout as one JSON line per report interval.
 *
 * It never outlives the test: it stops when its stdin closes (the test process ended, however it
 * ended) or on SIGTERM, stopping its pings with SIGINT first so that their summaries count.
 *
 *   prober --self 10.244.1.5 --targets 10.244.2.7,10.244.3.9 [--port 7777] [--interval-ms 200]
 */

const { values } = parseArgs({
  options: {
    self: { type: "string", default: "" },
    targets: { type: "string", default: "" },
    port: { type: "string", default: "7777" },
    "interval-ms": { type: "string", default: "200" },
    "report-ms": { type: "string", default: "1000" },
  },
});
const self = values.self as string;
const targets = (values.targets as string).split(",").filter(Boolean);
const port = Number(values.port);
const intervalMs = Number(values["interval-ms"]);
const reportMs = Number(values["report-ms"]);

const startedAt = Date.now();
let stopping = false;

const server: Server = createServer((sock) => {
  sock.setNoDelay(true);
  sock.on("error", () => sock.destroy());
  sock.pipe(sock);
});
server.on("error", (err) => {
  process.stderr.write(`echo server: ${err.message}\n`);
  process.exit(2);
});
server.listen(port, "0.0.0.0");

interface Path {
  target: string;
  icmp: IcmpTracker;
  ping: ChildProcess | undefined;
  pingDone: Promise<void>;
  tcp: TcpTracker;
  sock: Socket | undefined;
  seq: number;
}

function startPing(path: Path): void {
  // the parent-death signal ends a ping with its prober, however the prober ends
  const child = spawn(
    "setpriv",
    [
      "--pdeathsig",
      "KILL",
      "--",
      "ping",
      "-n",
      "-D",
      "-O",
      "-i",
      String(intervalMs / 1000),
      "-W",
      "1",
      path.target,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  path.ping = child;
  let rest = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    const split = splitLines(rest, chunk);
    rest = split.rest;
    for (const line of split.lines) path.icmp.onLine(line, Date.now());
  });
  child.stderr?.on("data", (b: Buffer) => process.stderr.write(`ping ${path.target}: ${b.toString()}`));
  path.pingDone = new Promise((resolve) => child.once("close", () => resolve()));
}

function connectTcp(path: Path): void {
  if (stopping) return;
  const sock = connect({ host: path.target, port });
  path.sock = sock;
  sock.setNoDelay(true);
  sock.setEncoding("utf8");
  let rest = "";
  sock.on("connect", () => path.tcp.onConnect());
  sock.on("data", (chunk: string) => {
    const split = splitLines(rest, chunk);
    rest = split.rest;
    for (const _ of split.lines) path.tcp.onEcho(Date.now());
  });
  let closed = false;
  const closeOnce = (error: string | undefined) => {
    if (closed) return;
    closed = true;
    path.sock = undefined;
    if (stopping) return;
    path.tcp.onClose(error);
    setTimeout(() => connectTcp(path), 500).unref();
  };
  sock.on("error", (err: NodeJS.ErrnoException) => closeOnce(err.code ?? err.message));
  sock.on("close", () => closeOnce(undefined));
}

const paths: Path[] = targets.map((target) => ({
  target,
  icmp: new IcmpTracker(startedAt),
  ping: undefined,
  pingDone: Promise.resolve(),
  tcp: new TcpTracker(startedAt),
  sock: undefined,
  seq: 0,
}));
for (const p of paths) {
  startPing(p);
  connectTcp(p);
}

const sender = setInterval(() => {
  for (const p of paths) if (p.sock && !p.sock.connecting) p.sock.write(echoLine(++p.seq));
}, intervalMs);

function stats(): PathStats[] {
  const now = Date.now();
  return paths.map((p) => ({
    from: self,
    to: p.target,
    icmp: p.icmp.snapshot(now),
    tcp: p.tcp.snapshot(now),
  }));
}

const reporter = setInterval(() => {
  process.stdout.write(`${JSON.stringify({ type: "stats", paths: stats() })}\n`);
}, reportMs);

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(sender);
  clearInterval(reporter);
  for (const p of paths) p.tcp.stop(Date.now());
  // SIGINT: ping prints how many it sent, which settles the last echoes' fate
  for (const p of paths) p.ping?.kill("SIGINT");
  await Promise.race([
    Promise.all(paths.map((p) => p.pingDone)),
    new Promise((r) => setTimeout(r, 3000).unref()),
  ]);
  for (const p of paths) {
    p.ping?.kill("SIGKILL");
    p.sock?.destroy();
  }
  process.stdout.write(`${JSON.stringify({ type: "final", paths: stats() })}\n`);
  server.close();
  process.exit(0);
}

process.stdin.on("end", () => void stop());
process.stdin.on("error", () => void stop());
process.stdin.resume();
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
