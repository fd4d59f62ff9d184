import { unlinkSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";

/**
 * A byte-level TCP/unix-socket forwarder. Network namespaces cannot reach the host's loopback,
 * but a unix socket on the filesystem is reachable from every namespace; so a node namespace gets
 * the test apiserver at its own 127.0.0.1:PORT through two forwarders (tcp -> unix inside the
 * namespace, unix -> tcp on the host), and no packet leaves loopback.
 *
 *   node forward.js tcp:127.0.0.1:6443 unix:/run/x.sock     (listen on tcp, connect to unix)
 *   node forward.js unix:/run/x.sock tcp:127.0.0.1:6443     (listen on unix, connect to tcp)
 */
type Endpoint = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

export function parseEndpoint(s: string): Endpoint {
  if (s.startsWith("unix:")) return { kind: "unix", path: s.slice(5) };
  const m = /^tcp:(.+):(\d+)$/.exec(s);
  if (!m) throw new Error(`bad endpoint ${s} (tcp:HOST:PORT or unix:PATH)`);
  return { kind: "tcp", host: m[1] as string, port: Number(m[2]) };
}

function connect(to: Endpoint): Socket {
  return to.kind === "unix" ? createConnection(to.path) : createConnection(to.port, to.host);
}

export function forward(from: Endpoint, to: Endpoint): Promise<void> {
  const server = createServer((client) => {
    const upstream = connect(to);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
  });
  return new Promise((resolveListening, reject) => {
    server.on("error", reject);
    if (from.kind === "unix") {
      try {
        unlinkSync(from.path);
      } catch {
        /* not there */
      }
      server.listen(from.path, () => resolveListening());
    } else {
      server.listen(from.port, from.host, () => resolveListening());
    }
  });
}

if (process.argv[1]?.endsWith("forward.js") && process.argv.length === 4) {
  const [from, to] = [parseEndpoint(process.argv[2] as string), parseEndpoint(process.argv[3] as string)];
  forward(from, to).then(
    () => console.log(`forwarding ${process.argv[2]} -> ${process.argv[3]}`),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
