/**
 * Work inside a pod's network namespace. Node cannot setns(2), and a netlink socket belongs to
 * the namespace it was opened in, so something has to run inside: one `nsenter --net=PATH ip
 * -batch -` per ADD. Measured on these machines (clean environment): nsenter + ip ~4 ms, nsenter
 * + a node helper speaking netlink ~50 ms (node's own start-up), which alone would exceed the
 * CNI ADD latency budget. Everything on the host side goes through netlink (hostnet.ts).
 */
import { spawn } from "node:child_process";
import { type ObservedPod, type PodWiring, podBatch } from "./plan.js";

export interface PodNetns {
  configure(w: PodWiring): Promise<void>;
  inspect(netns: string, ifname: string): Promise<ObservedPod>;
}

export class CommandError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

function run(cmd: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "" },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", (e) => reject(new CommandError(`cannot run ${cmd}: ${e.message}`, "")));
    child.on("close", (code) => {
      const stderr = Buffer.concat(err).toString("utf8").trim();
      if (code === 0) resolve(Buffer.concat(out).toString("utf8"));
      else reject(new CommandError(`${cmd} ${args.join(" ")} exited with ${code}: ${stderr}`, stderr));
    });
    child.stdin.on("error", () => {
      /* the child exited early; its exit code tells why */
    });
    child.stdin.end(input);
  });
}

/** `ip -j` prints one JSON array per batch line; split them without trusting line breaks. */
export function splitJSONArrays(text: string): unknown[][] {
  const out: unknown[][] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "[") {
      if (depth++ === 0) start = i;
    } else if (c === "]" && --depth === 0) {
      out.push(JSON.parse(text.slice(start, i + 1)) as unknown[]);
    }
  }
  return out;
}

const NAMED_NETNS = /^\/(?:var\/)?run\/netns\/([A-Za-z0-9_.-]+)$/;

export class IpBatchPodNetns implements PodNetns {
  constructor(
    private readonly nsenter = "nsenter",
    private readonly ip = "ip",
  ) {}

  /** `ip -n NAME` for namespaces under /var/run/netns (one exec instead of two), else nsenter. */
  private inNetns(netns: string, args: string[]): [string, string[]] {
    const named = NAMED_NETNS.exec(netns)?.[1];
    return named ? [this.ip, ["-n", named, ...args]] : [this.nsenter, [`--net=${netns}`, this.ip, ...args]];
  }

  configure(w: PodWiring): Promise<void> {
    const [cmd, args] = this.inNetns(w.netns, ["-batch", "-"]);
    return run(cmd, args, podBatch(w)).then(() => undefined);
  }

  async inspect(netns: string, ifname: string): Promise<ObservedPod> {
    const v4 = run(
      this.nsenter,
      [`--net=${netns}`, this.ip, "-j", "-batch", "-"],
      `addr show dev ${ifname}\nroute show\n`,
    );
    const v6 = run(this.nsenter, [`--net=${netns}`, this.ip, "-j", "-6", "-batch", "-"], "route show\n");
    const nb = run(this.nsenter, [`--net=${netns}`, this.ip, "-j", "neigh", "show", "dev", ifname], "");
    const [a, b, c] = await Promise.all([v4, v6, nb.catch(() => "[]")]);
    const [addrs = [], routes4 = []] = splitJSONArrays(a);
    const [routes6 = []] = splitJSONArrays(b);
    const [neighbors = []] = splitJSONArrays(c);
    return {
      addrs: addrs as ObservedPod["addrs"],
      routes: [...routes4, ...routes6] as ObservedPod["routes"],
      neighbors: neighbors as ObservedPod["neighbors"],
    };
  }
}
