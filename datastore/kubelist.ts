import http from "node:http";
import https from "node:https";
import type * as k8s from "@kubernetes/client-node";
import type { ListResult } from "./store.js";

export interface KubeListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size (default 500). */
  limit?: number;
}

/** An apiserver error answer (non-2xx) with the Status it carried. */
export class KubeHttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = "KubeHttpError";
  }
}

async function getJSON(kc: k8s.KubeConfig, url: URL): Promise<unknown> {
  const opts: https.RequestOptions = { method: "GET", headers: { Accept: "application/json" } };
  await kc.applyToHTTPSOptions(opts);
  const mod = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: { reason?: string; message?: string } | undefined;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300 && body) return resolve(body);
        reject(
          new KubeHttpError(
            code,
            body?.reason,
            `GET ${url.pathname}: HTTP ${code}: ${body?.message ?? text}`,
          ),
        );
      });
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * Lists an apiserver collection path as plain JSON, exactly the shape watch events carry (the
 * generated clients turn timestamps into Date objects, which would make a cache hold two shapes
 * of the same object). Pages are one snapshot; the first page's resourceVersion is the list's.
 */
export async function kubeList<T>(
  kc: k8s.KubeConfig,
  path: string,
  opts: KubeListOptions = {},
): Promise<ListResult<T>> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error("kubeconfig has no current cluster");
  for (;;) {
    const items: T[] = [];
    let resourceVersion = "";
    let cont: string | undefined;
    try {
      do {
        const url = new URL(server.replace(/\/$/, "") + path);
        url.searchParams.set("limit", String(opts.limit ?? 500));
        if (opts.labelSelector) url.searchParams.set("labelSelector", opts.labelSelector);
        if (opts.fieldSelector) url.searchParams.set("fieldSelector", opts.fieldSelector);
        if (cont) url.searchParams.set("continue", cont);
        const page = (await getJSON(kc, url)) as {
          items?: T[];
          metadata?: { resourceVersion?: string; continue?: string };
        };
        items.push(...(page.items ?? []));
        if (!cont) resourceVersion = page.metadata?.resourceVersion ?? "";
        cont = page.metadata?.continue || undefined;
      } while (cont);
      return { items, resourceVersion };
    } catch (err) {
      // The continue token expired between pages: the snapshot is gone, start over.
      if (err instanceof KubeHttpError && err.statusCode === 410 && cont) continue;
      throw err;
    }
  }
}
