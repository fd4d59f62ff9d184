/**
 * A KernelDataplane driven over stdin/stdout, one JSON object per line: what tests, benchmarks and
 * the lab run inside a network namespace (`ip netns exec NS node dist/devenv/dataplane-driver.js`),
 * since a netlink socket belongs to the namespace it was opened in.
 *
 * Requests:  {"id":1,"cmd":"start","options":{...}} | {"id":2,"cmd":"set","desired":{...}}
 *            | {"id":3,"cmd":"resync"} | {"id":4,"cmd":"status"} | {"id":5,"cmd":"stop"}
 *            | {"id":6,"cmd":"intents","tracker":{"node":...},"upsert":[spec...],"remove":["node"...],
 *               "ownBlocks":[...]}: the agent's incremental path. A DesiredTracker (made with
 *               `tracker` options on first use) takes the changes and becomes the desired state.
 * Replies:   {"id":1,"ok":true,"result":...} or {"id":1,"ok":false,"error":"..."}
 *            "set" and "intents" results carry `handleMs`: from the request's arrival (parsed) to
 *            the kernel having acknowledged every change, tracker update included; "intents" also
 *            `cpuMs`, this process's CPU time (user + system, the kernel's work in sendmsg included).
 * The process exits after "stop" or when stdin closes.
 */
import { createInterface } from "node:readline";
import {
  type DesiredState,
  DesiredTracker,
  KernelDataplane,
  type KernelDataplaneOptions,
  type TrackerOptions,
} from "../agent/index.js";
import type { RouteIntentSpec } from "../api/index.js";
import { createLogger, errorMessage } from "../lib/index.js";

interface Request {
  id: number;
  cmd: "start" | "set" | "resync" | "status" | "stop" | "intents";
  options?: Omit<KernelDataplaneOptions, "logger">;
  desired?: DesiredState;
  tracker?: TrackerOptions;
  upsert?: RouteIntentSpec[];
  remove?: string[];
  ownBlocks?: string[];
}

async function main(): Promise<void> {
  const log = createLogger("dataplane", process.env.WEFT_LOG_LEVEL ?? "warn");
  let dp: KernelDataplane | undefined;
  let tracker: DesiredTracker | undefined;
  const reply = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const rl = createInterface({ input: process.stdin });
  let stopping = false;

  const handle = async (req: Request): Promise<unknown> => {
    switch (req.cmd) {
      case "start":
        if (dp) throw new Error("already started");
        dp = new KernelDataplane({ ...req.options, logger: log });
        if (req.desired) void dp.setDesired(req.desired);
        return dp.start();
      case "set": {
        if (!dp) throw new Error("not started");
        const t0 = performance.now();
        const r = await dp.setDesired(req.desired ?? { routes: [], neighbors: [], fdb: [] });
        return { ...r, handleMs: performance.now() - t0 };
      }
      case "intents": {
        if (!dp) throw new Error("not started");
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        if (!tracker) {
          if (!req.tracker) throw new Error("first intents request needs tracker options");
          tracker = new DesiredTracker(req.tracker);
        }
        if (req.ownBlocks) tracker.setOwnBlocks(req.ownBlocks);
        for (const node of req.remove ?? []) tracker.removeIntent(node);
        for (const spec of req.upsert ?? []) tracker.upsertIntent(spec);
        const r = await dp.setDesired(tracker);
        const cpu = process.cpuUsage(c0);
        return {
          ...r,
          handleMs: performance.now() - t0,
          cpuMs: (cpu.user + cpu.system) / 1000,
          problems: tracker.problems().length,
        };
      }
      case "resync":
        if (!dp) throw new Error("not started");
        return dp.resync();
      case "status":
        if (!dp) throw new Error("not started");
        return dp.status();
      case "stop":
        stopping = true;
        await dp?.stop();
        dp = undefined;
        return true;
    }
  };

  for await (const line of rl) {
    if (!line.trim()) continue;
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
    } catch {
      reply({ id: -1, ok: false, error: "bad JSON" });
      continue;
    }
    // requests run concurrently; the dataplane serialises its own work
    void handle(req).then(
      (result) => {
        reply({ id: req.id, ok: true, result });
        if (stopping) process.exit(0);
      },
      (err: unknown) => reply({ id: req.id, ok: false, error: errorMessage(err) }),
    );
  }
  await dp?.stop();
}

void main();
