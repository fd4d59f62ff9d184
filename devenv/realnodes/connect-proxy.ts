import { unlinkSync } from "node:fs";
import { createConnection, createServer, isIPv4, type Server, type Socket } from "node:net";

/**
 * The apiserver's way into the cluster: an HTTP CONNECT proxy on a unix socket (its egress
 * selector's `cluster` connection), for kubelets and, through the apiserver's proxy subresources,
 * pods and Services. It runs inside the underlay namespace, so it dials node addresses from there.
 * The underlay has no routes to pods (the hub is no node), so targets in the pod and Service
 * ranges are handed to a second proxy that runs in a node's network namespace, where Weft's routes
 * and kube-proxy's rules reach them, as they do for an apiserver on a control-plane node. It
 * refuses every target outside the ranges it is given and never resolves names.
 *
 *   node connect-proxy.js /run/x/egress.sock 192.0.2.0/24 10.244.0.0/16=/run/x/pods.sock ...
 *   node connect-proxy.js /run/x/pods.sock 10.244.0.0/16,10.96.0.0/24     (in a node's namespace)
 */

/** Parses "CONNECT host:port HTTP/1.1" into an IPv4 address and port, or says why not. */
export function parseConnect(requestLine: string): { host: string; port: number } | { error: string } {
  const m = /^CONNECT (\S+):(\d+) HTTP\/1\.[01]$/.exec(requestLine.trim());
  if (!m) return { error: "not a CONNECT request" };
  const host = m[1] as string;
  const port = Number(m[2]);
  if (!isIPv4(host)) return { error: `target ${host} is not an IPv4 address (names are never resolved)` };
  if (port < 1 || port > 65535) return { error: `bad port ${port}` };
  return { host, port };
}

/** Whether an IPv4 address lies inside a CIDR. */
export function inSubnet(ip: string, cidr: string): boolean {
  const [net, lenText] = cidr.split("/");
  const len = Number(lenText);
  const toInt = (s: string) => s.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const size = 2 ** (32 - len);
  return Math.floor(toInt(ip) / size) === Math.floor(toInt(net as string) / size);
}

/** Targets in `cidr` are handed to the CONNECT proxy listening on `socket`. */
export interface Via {
  cidr: string;
  socket: string;
}

/** Where a target goes: dialed directly, handed to another proxy, or refused (and why). */
export function route(
  host: string,
  direct: readonly string[],
  via: readonly Via[],
): { direct: true } | { via: string } | { error: string } {
  if (direct.some((c) => inSubnet(host, c))) return { direct: true };
  const hop = via.find((v) => inSubnet(host, v.cidr));
  if (hop) return { via: hop.socket };
  return { error: `${host} is outside ${[...direct, ...via.map((v) => v.cidr)].join(", ")}` };
}

/** Listens on `socketPath`; resolves with the server once it listens. */
export function serve(socketPath: string, allowed: string | string[], via: Via[] = []): Promise<Server> {
  const direct = typeof allowed === "string" ? [allowed] : allowed;
  const server = createServer((client: Socket) => {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > 8192) client.destroy();
        return;
      }
      client.off("data", onData);
      const rest = head.subarray(end + 4);
      const target = parseConnect(head.subarray(0, end).toString("latin1").split("\r\n")[0] ?? "");
      const where = "error" in target ? target : route(target.host, direct, via);
      if ("error" in where || "error" in target) {
        const why = "error" in where ? where.error : "bad target";
        client.end(`HTTP/1.1 403 Forbidden\r\nContent-Length: ${why.length}\r\n\r\n${why}`);
        return;
      }
      // handed on: the next proxy gets the request as it came and answers it itself
      const upstream =
        "via" in where ? createConnection(where.via) : createConnection(target.port, target.host);
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      upstream.once("connect", () => {
        if ("via" in where) upstream.write(head);
        else {
          client.write("HTTP/1.1 200 Connection established\r\n\r\n");
          if (rest.length) upstream.write(rest);
        }
        client.pipe(upstream).pipe(client);
      });
      upstream.on("error", () => {
        if (!client.destroyed) client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n");
        close();
      });
      client.on("error", close);
      client.on("close", close);
      upstream.on("close", close);
    };
    client.on("data", onData);
    client.on("error", () => client.destroy());
  });
  return new Promise((resolveListening, reject) => {
    server.on("error", reject);
    try {
      unlinkSync(socketPath);
    } catch {
      /* not there */
    }
    server.listen(socketPath, () => resolveListening(server));
  });
}

if (process.argv[1]?.endsWith("connect-proxy.js") && process.argv.length >= 4) {
  const [socketPath, allowed] = [process.argv[2] as string, (process.argv[3] as string).split(",")];
  const via = process.argv.slice(4).map((arg) => {
    const [cidr, socket] = arg.split("=");
    if (!cidr || !socket) throw new Error(`${arg}: expected CIDR=SOCKET`);
    return { cidr, socket };
  });
  serve(socketPath, allowed, via).then(
    () =>
      console.log(
        `CONNECT proxy on ${socketPath} for ${allowed.join(", ")}${via.map((v) => `; ${v.cidr} via ${v.socket}`).join("")}`,
      ),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
