/**
 * The agent's CNI endpoint: HTTP/1.1 over a unix socket, one JSON request per CNI invocation
 * (POST /v1/cni/<command>, body cni/types.ts AgentRequest), answered with {result} or {error}.
 */
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { dirname } from "node:path";
import { type AgentRequest, type AgentResponse, CniError, ErrorCode, runPlugin } from "../../cni/index.js";
import { createLogger, errorMessage, type Logger } from "../../lib/index.js";
import type { FamilyName } from "../../net/index.js";
import type { AddressAssigner, PodEvents, PodIpamSource } from "./assigner.js";
import { HostNet } from "./hostnet.js";
import { IpBatchPodNetns, type PodNetns } from "./podns.js";
import { PodNetworkService } from "./service.js";

export interface CniServerOptions {
  socketPath: string;
  node: string;
  assigner: AddressAssigner;
  hostNet?: HostNet;
  podNetns?: PodNetns;
  /** A number, or asked per pod (the agent follows the underlay's MTU). */
  defaultMtu?: number | (() => number | undefined);
  defaultFamilies?: FamilyName[];
  log?: Logger;
  podIpam?: PodIpamSource;
  events?: PodEvents;
}

export interface CniServer {
  socketPath: string;
  service: PodNetworkService;
  close(): Promise<void>;
}

const COMMANDS: Record<string, AgentRequest["command"]> = {
  add: "ADD",
  del: "DEL",
  check: "CHECK",
  status: "STATUS",
  gc: "GC",
};
const MAX_BODY = 1 << 20;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new CniError(ErrorCode.DecodingFailure, "request body too large"));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** %XX escapes to bytes, read as UTF-8 (as Node.js reads the environment); the rest as it is. */
export function percentDecode(value: string): string {
  if (!value.includes("%")) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const hex = value.slice(i + 1, i + 3);
    if (value[i] === "%" && /^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(value.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

function asCniError(err: unknown, command: string): CniError {
  return err instanceof CniError
    ? err
    : new CniError(ErrorCode.Internal, `${command} failed`, errorMessage(err));
}

function send(res: ServerResponse, status: number, body: AgentResponse): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export async function startCniServer(o: CniServerOptions): Promise<CniServer> {
  const log = o.log ?? createLogger("cni-server");
  const hostNet = o.hostNet ?? new HostNet();
  const service = new PodNetworkService({
    node: o.node,
    assigner: o.assigner,
    hostNet,
    podNetns: o.podNetns ?? new IpBatchPodNetns(),
    log,
    ...(o.defaultMtu ? { defaultMtu: o.defaultMtu } : {}),
    ...(o.defaultFamilies ? { defaultFamilies: o.defaultFamilies } : {}),
    ...(o.podIpam ? { podIpam: o.podIpam } : {}),
    ...(o.events ? { events: o.events } : {}),
  });

  /**
   * POST /v1/cni/exec: a whole plugin invocation (CNI_* as headers, stdin as the body) for thin
   * clients such as the native plugin (cni/native); answered with the plugin's stdout, HTTP 200
   * for exit status 0 and 422 otherwise. Parsing and version conversion are the plugin's own code,
   * run here. With "CNI-Env-Encoding: percent" the header values are percent-encoded bytes, so
   * that any value of the environment (UTF-8, controls) arrives unchanged.
   */
  const onExec = async (req: IncomingMessage, res: ServerResponse) => {
    const percent = req.headers["cni-env-encoding"] === "percent";
    const h = (k: string) => {
      const v = req.headers[k];
      if (typeof v !== "string") return undefined;
      return percent ? percentDecode(v) : v;
    };
    const env = {
      CNI_COMMAND: h("cni-command"),
      CNI_CONTAINERID: h("cni-containerid"),
      CNI_NETNS: h("cni-netns"),
      CNI_IFNAME: h("cni-ifname"),
      CNI_ARGS: h("cni-args"),
      CNI_PATH: h("cni-path"),
    };
    let out: { stdout: string; exitCode: number };
    try {
      out = await runPlugin(env, await readBody(req), async (request) => {
        try {
          const result = await service.handle(request);
          return result ? { result } : {};
        } catch (err) {
          const e = asCniError(err, request.command);
          log.warn("cni request failed", {
            command: request.command,
            id: request.containerId,
            code: e.code,
            msg: e.message,
          });
          return { error: { code: e.code, msg: e.message, ...(e.details ? { details: e.details } : {}) } };
        }
      });
    } catch (err) {
      out = { stdout: `${JSON.stringify(asCniError(err, "exec").toJSON("1.1.0"))}\n`, exitCode: 1 };
    }
    res.writeHead(out.exitCode === 0 ? 200 : 422, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(out.stdout),
    });
    res.end(out.stdout);
  };

  const onRequest = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === "/v1/cni/exec" && req.method === "POST") return onExec(req, res);
    const m = /^\/v1\/cni\/([a-z]+)$/.exec(req.url ?? "");
    const command = m ? COMMANDS[m[1]!] : undefined;
    if (!command || req.method !== "POST") {
      send(res, 404, {
        error: { code: ErrorCode.Internal, msg: `no such endpoint ${req.method} ${req.url}` },
      });
      return;
    }
    const t0 = performance.now();
    let body: AgentRequest | undefined;
    try {
      body = JSON.parse(await readBody(req)) as AgentRequest;
      if (body.command !== command) {
        throw new CniError(ErrorCode.DecodingFailure, `request for ${body.command} sent to ${req.url}`);
      }
      const result = await service.handle(body);
      send(res, 200, result ? { result } : {});
      log.debug("cni request", { command, id: body.containerId, ms: +(performance.now() - t0).toFixed(1) });
    } catch (err) {
      const e = CniError.from(err, `${command} failed`);
      log.warn("cni request failed", {
        command,
        id: body?.containerId,
        code: e.code,
        msg: e.message,
        ...(e.details ? { details: e.details } : {}),
      });
      send(res, 200, {
        error: { code: e.code, msg: e.message, ...(e.details ? { details: e.details } : {}) },
      });
    }
  };

  mkdirSync(dirname(o.socketPath), { recursive: true });
  // a socket file left by an earlier agent would make listen fail with EADDRINUSE
  rmSync(o.socketPath, { force: true });
  const server: Server = createServer((req, res) => void onRequest(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.socketPath, () => resolve());
  });
  chmodSync(o.socketPath, 0o600);
  log.info("CNI server listening", { socket: o.socketPath, node: o.node });

  return {
    socketPath: o.socketPath,
    service,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          if (!o.hostNet) hostNet.close();
          rmSync(o.socketPath, { force: true });
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
