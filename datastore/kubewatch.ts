import * as k8s from "@kubernetes/client-node";
import type { StopWatch, WatchHandler } from "./store.js";

export interface KubeWatchOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * The server ends the watch after this long (plus up to 20% jitter, so that many watchers do
   * not reconnect at once). A bounded watch also notices a half-open connection. Default 300.
   */
  timeoutSeconds?: number;
}

interface KubeStatus {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
}

/**
 * Watches an apiserver collection path (e.g. /apis/weft.dev/v1alpha1/ippools or /api/v1/nodes)
 * and turns client-node's callbacks into WatchEvents with exactly one terminal event.
 */
export function kubeWatch<T>(
  kc: k8s.KubeConfig,
  path: string,
  fromResourceVersion: string | undefined,
  handler: WatchHandler<T>,
  opts: KubeWatchOptions = {},
): StopWatch {
  let stopped = false;
  let ended = false;
  let controller: AbortController | undefined;
  const end = (ev: Parameters<WatchHandler<T>>[0]) => {
    if (stopped || ended) return;
    ended = true;
    controller?.abort();
    handler(ev);
  };
  const base = opts.timeoutSeconds ?? 300;
  const query: Record<string, string | number | boolean | undefined> = {
    allowWatchBookmarks: true,
    resourceVersion: fromResourceVersion || undefined,
    labelSelector: opts.labelSelector,
    fieldSelector: opts.fieldSelector,
    timeoutSeconds: Math.max(1, Math.round(base * (1 + Math.random() * 0.2))),
  };
  const onEvent = (phase: string, obj: unknown) => {
    if (stopped || ended) return;
    switch (phase) {
      case "ADDED":
      case "MODIFIED":
      case "DELETED":
        handler({ type: phase, object: obj as T });
        return;
      case "BOOKMARK": {
        const rv = (obj as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
        if (rv) handler({ type: "BOOKMARK", resourceVersion: rv });
        return;
      }
      case "ERROR": {
        const status = obj as KubeStatus;
        if (status.code === 410 || status.reason === "Expired" || status.reason === "Gone") {
          end({ type: "EXPIRED", message: status.message ?? "resource version expired" });
        } else {
          end({
            type: "CLOSED",
            error: new Error(`watch ${path}: ${status.message ?? JSON.stringify(obj)}`),
          });
        }
        return;
      }
    }
  };
  const onDone = (err: unknown) => {
    if (!err) return end({ type: "CLOSED" });
    const code = (err as { statusCode?: number; code?: number }).statusCode;
    if (code === 410) return end({ type: "EXPIRED", message: `watch ${path}: 410 Gone` });
    const e = err instanceof Error ? err : new Error(String(err));
    end({ type: "CLOSED", error: new Error(`watch ${path}: ${e.message}`, { cause: e }) });
  };
  new k8s.Watch(kc).watch(path, query, onEvent, onDone).then(
    (c) => {
      controller = c;
      if (stopped || ended) c.abort();
    },
    (err: unknown) => onDone(err ?? new Error("watch failed")),
  );
  return () => {
    stopped = true;
    controller?.abort();
  };
}
