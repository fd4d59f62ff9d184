import { parseArgs } from "node:util";
import type { NodeNetworkStatus } from "../../api/index.js";
import { type Command, UsageError } from "../command.js";
import { formatNodeStatus } from "./format.js";

/** `weftctl node status [NODE]`: sessions, conditions and owned counts from NodeNetworkStatus. */
export const nodeStatusCommand: Command = {
  path: ["node", "status"],
  summary: "a node's BGP sessions, conditions and owned kernel entries (all nodes without NODE)",
  usage: "weftctl node status [NODE] [-o text|json]",
  async run(ctx, args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { output: { type: "string", short: "o", default: "text" } },
    });
    if (positionals.length > 1) throw new UsageError("at most one node");
    if (!["text", "json"].includes(values.output as string)) throw new UsageError("-o must be text or json");
    const store = ctx.store();
    let items: NodeNetworkStatus[];
    const wanted = positionals[0];
    if (wanted) {
      const one = await store.get("NodeNetworkStatus", wanted);
      if (!one) {
        ctx.err(`no NodeNetworkStatus for node ${wanted}: is weft-agent running there?`);
        return 1;
      }
      items = [one];
    } else {
      items = (await store.list("NodeNetworkStatus")).items.sort((a, b) =>
        a.metadata.name < b.metadata.name ? -1 : 1,
      );
    }
    if (values.output === "json") {
      ctx.out(
        JSON.stringify(
          items.map((i) => ({ node: i.metadata.name, ...i.status })),
          null,
          2,
        ),
      );
      return 0;
    }
    if (items.length === 0) ctx.out("no NodeNetworkStatus objects: no weft-agent has reported yet");
    ctx.out(items.map((i) => formatNodeStatus(i)).join("\n"));
    return 0;
  },
};
