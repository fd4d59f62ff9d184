/**
 * The CNI server on its own, with the in-memory assigner: for dataplane tests and the benchmark,
 * run inside a node's namespace (`ip netns exec NODE node dist/devenv/cni-standalone.js ...`).
 * The real agent starts the same server with the IPAM-backed assigner.
 *   --socket PATH --node NAME --pool4 CIDR [--pool6 CIDR] [--mtu N]
 */
import { parseArgs } from "node:util";
import { startCniServer } from "../agent/index.js";
import { createLogger } from "../lib/index.js";
import { InMemoryAssigner } from "./memory-assigner.js";

const { values } = parseArgs({
  options: {
    socket: { type: "string" },
    node: { type: "string", default: "node" },
    pool4: { type: "string" },
    pool6: { type: "string" },
    mtu: { type: "string" },
  },
});
if (!values.socket || (!values.pool4 && !values.pool6)) {
  console.error("usage: standalone --socket PATH --node NAME --pool4 CIDR [--pool6 CIDR] [--mtu N]");
  process.exit(2);
}
const log = createLogger("cni-server");
const server = await startCniServer({
  socketPath: values.socket,
  node: values.node,
  assigner: new InMemoryAssigner({
    ...(values.pool4 ? { ipv4: values.pool4 } : {}),
    ...(values.pool6 ? { ipv6: values.pool6 } : {}),
  }),
  // dual-stack only when a configuration asks for it ("families")
  defaultFamilies: values.pool4 ? ["ipv4"] : ["ipv6"],
  ...(values.mtu ? { defaultMtu: Number(values.mtu) } : {}),
  log,
});
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => void server.close().then(() => process.exit(0)));
}
