import { type ChildProcess, execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { splitLines } from "./probe.js";

const execFileP = promisify(execFile);

/**
 * Whether a node's kernel ever loses a route to another node's pod block during a fault:
 * `ip monitor route` in every node's network namespace, each deletion of a route whose
 * destination is a watched block recorded with its time. A route replaced in place (another next
 * hop) is no deletion; a route deleted and added back a millisecond later is one.
 */

/** The destination of a route as `ip route` prints it, "blackhole"/"unreachable" prefixes aside. */
export function routeDestination(line: string): string | undefined {
  const words = line.trim().split(/\s+/);
  let i = 0;
  if (words[i] === "Deleted") i++;
  if (["blackhole", "unreachable", "prohibit", "throw", "local", "broadcast"].includes(words[i] ?? "")) i++;
  const dst = words[i];
  return dst && /^[0-9a-f.:]+(\/\d+)?$/i.test(dst) ? dst : undefined;
}

/** A deletion of a route to one of `blocks`, from one line of `ip monitor route`. */
export function deletedBlockRoute(line: string, blocks: ReadonlySet<string>): string | undefined {
  if (!line.startsWith("Deleted ")) return undefined;
  const dst = routeDestination(line);
  return dst && blocks.has(dst) ? dst : undefined;
}

export interface RouteLoss {
  node: string;
  block: string;
  line: string;
  at: number;
}

/** The routes of a node's kernel to `blocks` that it holds now (one `ip route` dump). */
export async function routesHeld(netns: string, blocks: Iterable<string>): Promise<string[]> {
  const { stdout } = await execFileP("ip", ["-n", netns, "route", "show"]);
  const want = new Set(blocks);
  const held = new Set<string>();
  for (const line of stdout.split("\n")) {
    const dst = routeDestination(line);
    if (dst && want.has(dst) && !line.startsWith("blackhole")) held.add(dst);
  }
  return [...held].sort();
}

export class RouteWatch {
  readonly losses: RouteLoss[] = [];
  private readonly children: ChildProcess[] = [];

  /**
   * Watches each node's kernel for deletions of routes to the blocks of the other nodes
   * (`blocksOf`: node -> its block CIDRs).
   */
  constructor(nodes: Array<{ name: string; ns: string }>, blocksOf: Map<string, string[]>) {
    for (const node of nodes) {
      const others = new Set(
        [...blocksOf].filter(([owner]) => owner !== node.name).flatMap(([, cidrs]) => cidrs),
      );
      // the parent-death signal ends a monitor with this process, however it ends: a monitor left
      // behind would keep its namespace alive
      const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", "ip", "-n", node.ns, "monitor", "route"], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      let rest = "";
      child.stdout?.setEncoding("utf8");
      child.stdout?.on("data", (chunk: string) => {
        const split = splitLines(rest, chunk);
        rest = split.rest;
        for (const line of split.lines) {
          const block = deletedBlockRoute(line, others);
          if (block) this.losses.push({ node: node.name, block, line: line.trim(), at: Date.now() });
        }
      });
      this.children.push(child);
    }
  }

  /** Stops watching (kills the monitors, which are this process's children). */
  stop(): RouteLoss[] {
    for (const c of this.children) c.kill("SIGKILL");
    return this.losses;
  }
}
