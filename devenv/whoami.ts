import { createConnection, createServer } from "node:net";

/**
 * The outside host's view of who called: a TCP server that answers every connection with the
 * caller's address as it saw it (after any NAT on the way) and closes, and the client that asks.
 * Both run inside network namespaces a test made (`ip netns exec NS node whoami.js ...`).
 *
 *   node whoami.js serve PORT           listen on every address of the namespace
 *   node whoami.js ask HOST PORT        print what the server saw; exit 1 after 5 s without an answer
 */
export function serve(port: number): void {
  createServer((socket) => socket.end(`${socket.remoteAddress?.replace(/^::ffff:/, "") ?? "?"}\n`)).listen(
    port,
    "::",
  );
}

export function ask(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port, timeout: 5000 });
    let text = "";
    socket.on("data", (d: Buffer) => {
      text += d.toString();
    });
    socket.on("end", () => resolve(text.trim()));
    socket.on("timeout", () => {
      socket.destroy();
      reject(new Error(`no answer from ${host}:${port} within 5 s`));
    });
    socket.on("error", reject);
  });
}

const [mode, a, b] = process.argv.slice(2);
if (mode === "serve") serve(Number(a));
else if (mode === "ask")
  ask(a as string, Number(b)).then(
    (who) => process.stdout.write(`${who}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
