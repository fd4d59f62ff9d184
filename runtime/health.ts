import http from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, register } from "prom-client";
import { errorMessage } from "../lib/index.js";

/** A readiness check: true or undefined when ready; false or a reason (string) when not. Throwing means not ready. */
export type ReadyCheck = () => boolean | string | undefined | Promise<boolean | string | undefined>;

export interface HealthServerOptions {
  /** Default 0 (any free port; read it back from start()). */
  port?: number;
  /** Default 0.0.0.0: kubelet probes and Prometheus come from outside the pod. */
  host?: string;
  /** Process metrics (CPU, memory, event loop lag) on /metrics. Default true. */
  defaultMetrics?: boolean;
}

let defaultMetricsOn = false;

async function runCheck(check: ReadyCheck): Promise<string | undefined> {
  try {
    const r = await check();
    if (r === true || r === undefined) return undefined;
    return r === false ? "not ready" : r;
  } catch (err) {
    return errorMessage(err);
  }
}

/**
 * /healthz: the process answers (liveness; deliberately checks nothing else, so a slow apiserver
 * does not get pods restarted). /readyz: every registered check passes, e.g. informers synced;
 * `?verbose` lists each. /metrics: prom-client's default registry.
 */
export class HealthServer {
  private readonly checks = new Map<string, ReadyCheck>();
  private server: http.Server | undefined;

  constructor(private readonly opts: HealthServerOptions = {}) {
    if ((opts.defaultMetrics ?? true) && !defaultMetricsOn) {
      defaultMetricsOn = true;
      collectDefaultMetrics();
    }
  }

  addReadyCheck(name: string, check: ReadyCheck): this {
    this.checks.set(name, check);
    return this;
  }

  removeReadyCheck(name: string): void {
    this.checks.delete(name);
  }

  /** Name -> failure reason for every failing check (empty when ready). */
  async failing(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        const why = await runCheck(check);
        if (why !== undefined) out.set(name, why);
      }),
    );
    return out;
  }

  async start(): Promise<{ port: number; url: string }> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        res.writeHead(500, { "content-type": "text/plain" }).end(`${String(err)}\n`);
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.opts.port ?? 0, this.opts.host ?? "0.0.0.0", () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const host = this.opts.host && this.opts.host !== "0.0.0.0" ? this.opts.host : "127.0.0.1";
    return { port, url: `http://${host}:${port}` };
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const text = (code: number, body: string) =>
      res.writeHead(code, { "content-type": "text/plain; charset=utf-8" }).end(body);
    switch (url.pathname) {
      case "/healthz":
      case "/livez":
        return void text(200, "ok\n");
      case "/readyz": {
        const failing = await this.failing();
        const ok = failing.size === 0;
        if (!url.searchParams.has("verbose")) {
          const why = [...failing].map(([n, r]) => `[-]${n}: ${r}`).join("\n");
          return void text(ok ? 200 : 503, ok ? "ok\n" : `${why}\nreadyz check failed\n`);
        }
        const lines = [...this.checks.keys()].sort().map((n) => {
          const r = failing.get(n);
          return r === undefined ? `[+]${n} ok` : `[-]${n}: ${r}`;
        });
        return void text(
          ok ? 200 : 503,
          `${lines.join("\n")}\n${ok ? "readyz check passed" : "readyz check failed"}\n`,
        );
      }
      case "/metrics": {
        const body = await register.metrics();
        return void res.writeHead(200, { "content-type": register.contentType }).end(body);
      }
      default:
        return void text(404, "not found\n");
    }
  }
}
