import { parseArgs } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { BGP_CONFIGURATION_NAME } from "../../api/index.js";
import { computeTopology, topologyInputFrom } from "../../bgp/index.js";
import { type Command, UsageError } from "../command.js";
import { topologyDot, topologyText } from "./render.js";

/**
 * `weftctl bgp topology`: who peers with whom, computed exactly as the agents compute it (same
 * inputs, same function), as text, Graphviz DOT (`| dot -Tsvg`) or JSON.
 */
export const bgpTopologyCommand: Command = {
  path: ["bgp", "topology"],
  summary: "who peers with whom over BGP (mesh, reflectors, external peers)",
  usage: "weftctl bgp topology [-o text|dot|json]",
  async run(ctx, args) {
    const { values } = parseArgs({
      args,
      options: { output: { type: "string", short: "o", default: "text" } },
    });
    const output = values.output as string;
    if (!["text", "dot", "json"].includes(output)) throw new UsageError("-o must be text, dot or json");
    const store = ctx.store();
    const core = ctx.kc().makeApiClient(k8s.CoreV1Api);
    const [nodes, pools, peers, config] = await Promise.all([
      core.listNode(),
      store.list("IPPool"),
      store.list("BGPPeer"),
      store.get("BGPConfiguration", BGP_CONFIGURATION_NAME),
    ]);
    const topo = computeTopology(
      topologyInputFrom({
        nodes: nodes.items,
        pools: pools.items,
        peers: peers.items,
        ...(config ? { config } : {}),
      }),
    );
    if (output === "dot") ctx.out(topologyDot(topo));
    else if (output === "json") ctx.out(JSON.stringify(topo, null, 2));
    else ctx.out(topologyText(topo));
    return 0;
  },
};
