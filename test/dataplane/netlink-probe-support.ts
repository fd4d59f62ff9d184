/**
 * Runs netlink/ code inside a network namespace for netlink-kernel.test.ts
 * (`ip netns exec NS node netlink-probe.js '<json>'`) and prints one JSON result line.
 */
import { openSync } from "node:fs";
import { errorMessage } from "../../lib/index.js";
import { type BulkItem, BulkSender } from "../../netlink/bulk.js";
import { AF_BRIDGE, AF_INET } from "../../netlink/constants.js";
import {
  encodeAddress,
  encodeVethLink,
  encodeVxlanLink,
  writeFdb,
  writeNeighbor,
  writeRoute,
} from "../../netlink/encode.js";
import { NetlinkError, Rtnl } from "../../netlink/rtnl.js";

type Cmd =
  | { op: "bulk"; n: number; badEvery?: number; ackEach?: boolean; batch?: number; del?: boolean }
  | { op: "entries"; dev: string; n: number }
  | { op: "vxlan"; name: string; local: string; link: string }
  | { op: "veth"; name: string; peer: string; peerNetns: string }
  | { op: "dump"; dev: string };

async function main(): Promise<unknown> {
  const cmd = JSON.parse(process.argv[2] ?? "{}") as Cmd;
  const rtnl = new Rtnl();
  try {
    switch (cmd.op) {
      case "bulk": {
        const u0 = (await rtnl.link("u0"))!.index;
        const bulk = new BulkSender({ ackEach: cmd.ackEach, batchMessages: cmd.batch });
        const items = Array.from({ length: cmd.n }, (_, i) => {
          const bad = cmd.badEvery !== undefined && i % cmd.badEvery === cmd.badEvery - 1;
          const spec = {
            dst: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`,
            gateway: "192.168.77.2",
            oif: bad ? 99999 : u0,
          };
          return cmd.del
            ? { encode: (w, seq, ack) => writeRoute(w, "del", { dst: spec.dst }, seq, ack), tolerate: [3, 2] }
            : { encode: (w, seq, ack) => writeRoute(w, "set", spec, seq, ack) };
        }) satisfies Parameters<BulkSender["send"]>[0];
        const t0 = performance.now();
        const out = await bulk.send(items);
        const ms = performance.now() - t0;
        bulk.close();
        return {
          ...out,
          failedIdx: out.failed.map((f) => f.index),
          codes: [...new Set(out.failed.map((f) => f.code))],
          ms,
        };
      }
      case "entries": {
        const dev = (await rtnl.link(cmd.dev))!.index;
        const bulk = new BulkSender();
        const items: BulkItem[] = [];
        for (let i = 1; i <= cmd.n; i++) {
          const mac = `02:00:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;
          const vtep = `10.245.${i >> 8}.${i & 255}`;
          items.push({
            encode: (w, seq, ack) => writeNeighbor(w, "set", { ifindex: dev, ip: vtep, mac }, seq, ack),
          });
          items.push({
            encode: (w, seq, ack) =>
              writeFdb(w, "set", { ifindex: dev, mac, dst: `192.168.78.${i}` }, seq, ack),
          });
          items.push({
            encode: (w, seq, ack) =>
              writeRoute(
                w,
                "set",
                { dst: `10.246.${i}.0/24`, gateway: vtep, oif: dev, onlink: true },
                seq,
                ack,
              ),
          });
        }
        items.push({
          encode: (w, seq, ack) =>
            writeRoute(w, "set", { dst: "10.247.0.0/16", type: "blackhole" }, seq, ack),
        });
        const out = await bulk.send(items);
        bulk.close();
        return out;
      }
      case "vxlan": {
        const link = (await rtnl.link(cmd.link))!.index;
        const spec = { name: cmd.name, vni: 4096, port: 4789, local: cmd.local, link, mtu: 1400, up: true };
        await rtnl.request(encodeVxlanLink(spec), "create vxlan");
        let again = "";
        try {
          await rtnl.request(encodeVxlanLink(spec), "create vxlan again");
        } catch (err) {
          again = err instanceof NetlinkError ? err.code : String(err);
        }
        const index = (await rtnl.link(cmd.name))!.index;
        await rtnl.request(encodeAddress("set", { index, cidr: "10.244.1.0/32" }));
        return { again, link: await rtnl.link(cmd.name) };
      }
      case "veth": {
        const fd = openSync(`/var/run/netns/${cmd.peerNetns}`, "r");
        await rtnl.request(encodeVethLink({ name: cmd.name, peerName: cmd.peer, peerNsFd: fd, mtu: 1400 }));
        return { link: await rtnl.link(cmd.name) };
      }
      case "dump": {
        const links = await rtnl.links();
        const index = links.find((l) => l.name === cmd.dev)?.index;
        return {
          routes: (await rtnl.routes(AF_INET)).filter((r) => r.table === 254),
          neighbors: (await rtnl.neighbors(AF_INET)).filter((n) => n.ifindex === index),
          fdb: (await rtnl.neighbors(AF_BRIDGE)).filter((n) => n.ifindex === index && n.ip),
          links: links.map((l) => ({ ...l, infoData: undefined })),
        };
      }
    }
  } finally {
    rtnl.close();
  }
}

main().then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (err: unknown) => {
    process.stdout.write(`${JSON.stringify({ error: errorMessage(err) })}\n`);
    process.exitCode = 1;
  },
);
