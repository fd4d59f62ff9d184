/**
 * The plugin's only I/O besides stdin/stdout: one HTTP/1.1 request to the local agent over its
 * unix socket (the agent serves it with node:http). The request is written by hand on node:net:
 * in a process that lives for one request, node:http's client costs 10-20 ms of cold code per
 * pod (measured), more than the round trip itself. An agent that is not there (yet) is "try
 * again later" (code 11), which makes the runtime retry instead of failing the pod for good.
 */
import { type AgentRequest, type AgentResponse, CniError, ErrorCode } from "./types.js";

// Builtins come through process.getBuiltinModule (no import/require), so the bundle is a plain
// script that runs the same as CommonJS or ESM wherever it is installed.
const { connect } = process.getBuiltinModule("node:net");

const UNREACHABLE = new Set([
  "ENOENT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ENOTSOCK",
  "EAGAIN",
  "EACCES",
]);

/** Splits a complete HTTP/1.1 response (the connection was closed by the server). */
export function parseHttpResponse(raw: Buffer): { status: number; body: string } {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) throw new Error("truncated HTTP response");
  const head = raw.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "")?.[1]);
  if (!status) throw new Error(`bad HTTP status line ${JSON.stringify(head[0])}`);
  let body = raw.subarray(end + 4);
  const headers = new Map(
    head.slice(1).map((h) => {
      const i = h.indexOf(":");
      return [h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim()] as const;
    }),
  );
  if (headers.get("transfer-encoding")?.toLowerCase() === "chunked") {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = body.indexOf("\r\n", at);
      const size = Number.parseInt(body.subarray(at, eol).toString("latin1"), 16);
      if (eol < 0 || !(size > 0)) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (headers.has("content-length")) {
    body = body.subarray(0, Number(headers.get("content-length")));
  }
  return { status, body: body.toString("utf8") };
}

export function callAgent(
  socketPath: string,
  path: string,
  body: AgentRequest | undefined,
  timeoutMs: number,
): Promise<AgentResponse> {
  const payload = Buffer.from(body === undefined ? "" : JSON.stringify(body), "utf8");
  const head =
    `${body === undefined ? "GET" : "POST"} ${path} HTTP/1.1\r\nHost: weft-agent\r\nConnection: close\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const chunks: Buffer[] = [];
    let settled = false;
    const fail = (err: CniError) => {
      if (settled) return;
      settled = true;
      sock.destroy();
      reject(err);
    };
    sock.setTimeout(timeoutMs, () =>
      fail(
        new CniError(
          ErrorCode.TryAgainLater,
          `the weft agent did not answer within ${timeoutMs} ms`,
          socketPath,
        ),
      ),
    );
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("error", (err: NodeJS.ErrnoException) => {
      const code = err.code && UNREACHABLE.has(err.code) ? ErrorCode.TryAgainLater : ErrorCode.Internal;
      fail(
        new CniError(
          code,
          `cannot reach the weft agent at ${socketPath}`,
          `${err.code ?? ""} ${err.message}`.trim(),
        ),
      );
    });
    sock.on("end", () => {
      if (settled) return;
      settled = true;
      let res: { status: number; body: string };
      try {
        res = parseHttpResponse(Buffer.concat(chunks));
      } catch (err) {
        reject(
          new CniError(ErrorCode.TryAgainLater, "the weft agent closed the connection early", String(err)),
        );
        return;
      }
      try {
        resolve(JSON.parse(res.body) as AgentResponse);
      } catch {
        reject(
          new CniError(
            ErrorCode.Internal,
            `the agent answered HTTP ${res.status} with a body that is not JSON`,
            res.body.slice(0, 200),
          ),
        );
      }
    });
    // no half-close: node's HTTP server drops a connection whose client has ended before the
    // answer is ready; "Connection: close" makes the server end it after the response
    sock.write(Buffer.concat([Buffer.from(head, "latin1"), payload]));
  });
}
