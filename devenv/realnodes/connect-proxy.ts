import { unlinkSync } from "node:fs";
import { createConnection, createServer, isIPv4, type Server, type Socket } from "node:net";

/**
 * The apiserver's way to kubelets: an HTTP CONNECT proxy on a unix socket (its egress selector's
 * `cluster` connection). It runs inside the underlay namespace, so it dials node addresses from
 * there; it refuses every target outside the one subnet it is given, and never resolves names.
 *
 *   node connect-proxy.js /run/x/egress.sock 192.0.2.0/24
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

/** Listens on `socketPath`; resolves with the server once it listens. */
export function serve(socketPath: string, allowed: string): Promise<Server> {
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
      if ("error" in target || !inSubnet(target.host, allowed)) {
        const why = "error" in target ? target.error : `${target.host} is outside ${allowed}`;
        client.end(`HTTP/1.1 403 Forbidden\r\nContent-Length: ${why.length}\r\n\r\n${why}`);
        return;
      }
      const upstream = createConnection(target.port, target.host);
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      upstream.once("connect", () => {
        client.write("HTTP/1.1 200 Connection established\r\n\r\n");
        if (rest.length) upstream.write(rest);
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

if (process.argv[1]?.endsWith("connect-proxy.js") && process.argv.length === 4) {
  const [socketPath, allowed] = [process.argv[2] as string, process.argv[3] as string];
  serve(socketPath, allowed).then(
    () => console.log(`CONNECT proxy on ${socketPath} for ${allowed}`),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
