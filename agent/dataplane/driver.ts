/**
 * A KernelDataplane driven over stdin/stdout, one JSON object per line: what tests, benchmarks and
 * the lab run inside a network namespace (`ip netns exec NS node dist/agent/dataplane/driver.js`),
 * since a netlink socket belongs to the namespace it was opened in.
 *
 * Requests:  {"id":1,"cmd":"start","options":{...}} | {"id":2,"cmd":"set","desired":{...}}
 *            | {"id":3,"cmd":"resync"} | {"id":4,"cmd":"status"} | {"id":5,"cmd":"stop"}
 * Replies:   {"id":1,"ok":true,"result":...} or {"id":1,"ok":false,"error":"..."}
 * The process exits after "stop" or when stdin closes.
 */
import { createInterface } from "node:readline";
import { createLogger } from "../../lib/log.js";
import { KernelDataplane, type KernelDataplaneOptions } from "./kernel.js";
import type { DesiredState } from "./model.js";

interface Request {
  id: number;
  cmd: "start" | "set" | "resync" | "status" | "stop";
  options?: Omit<KernelDataplaneOptions, "logger">;
  desired?: DesiredState;
}

async function main(): Promise<void> {
  const log = createLogger("dataplane", process.env.WEFT_LOG_LEVEL ?? "warn");
  let dp: KernelDataplane | undefined;
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
      case "set":
        if (!dp) throw new Error("not started");
        return dp.setDesired(req.desired ?? { routes: [], neighbors: [], fdb: [] });
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
      (err: unknown) =>
        reply({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
  }
  await dp?.stop();
}

void main();
