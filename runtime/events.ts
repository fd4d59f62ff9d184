import { randomBytes } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { createLogger } from "../lib/index.js";

const log = createLogger("events");

/** The object an Event is about. */
export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  /** Unset for cluster-scoped objects (their Events go to the default namespace). */
  namespace?: string;
  uid?: string;
}

export interface EventRecorderOptions {
  /** Who reports: weft-agent, weft-controller. */
  component: string;
  /** Which one: the node of an agent, the pod of a controller. */
  instance: string;
  /** A repeat of the same Event within this time raises its count instead of adding one (default 10 min). */
  aggregateMs?: number;
}

interface Seen {
  name: string;
  namespace: string;
  count: number;
  at: number;
}

/**
 * core/v1 Events, as `kubectl describe` shows them. Repeats of one Event (same object, reason and
 * message; a kubelet retries a failed sandbox every few seconds) are folded into one object whose
 * count rises. Best effort: a failure to record is logged, never thrown.
 */
export class EventRecorder {
  private readonly core: k8s.CoreV1Api;
  private readonly seen = new Map<string, Seen>();
  private readonly aggregateMs: number;

  constructor(
    kc: k8s.KubeConfig,
    private readonly opts: EventRecorderOptions,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.aggregateMs = opts.aggregateMs ?? 10 * 60_000;
  }

  warn(target: EventTarget, reason: string, message: string): Promise<void> {
    return this.record("Warning", target, reason, message);
  }

  normal(target: EventTarget, reason: string, message: string): Promise<void> {
    return this.record("Normal", target, reason, message);
  }

  /** Never rejects. */
  async record(
    type: "Normal" | "Warning",
    target: EventTarget,
    reason: string,
    message: string,
  ): Promise<void> {
    try {
      await this.emit(type, target, reason, message.slice(0, 1024));
    } catch (err) {
      log.warn("could not record an Event", {
        kind: target.kind,
        name: target.name,
        reason,
        error: String(err),
      });
    }
  }

  private async emit(type: string, target: EventTarget, reason: string, message: string): Promise<void> {
    const now = new Date();
    const stamp = now.toISOString().replace(/\.\d+Z$/, "Z");
    const namespace = target.namespace ?? "default";
    const key = `${target.kind}/${namespace}/${target.name}/${target.uid ?? ""}|${type}|${reason}|${message}`;
    const prev = this.seen.get(key);
    if (prev && now.getTime() - prev.at < this.aggregateMs) {
      prev.count++;
      prev.at = now.getTime();
      try {
        await this.core.patchNamespacedEvent(
          {
            name: prev.name,
            namespace: prev.namespace,
            body: { count: prev.count, lastTimestamp: stamp },
          },
          k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
        );
        return;
      } catch (err) {
        if (!(err instanceof k8s.ApiException && err.code === 404)) throw err;
      }
    }
    if (this.seen.size > 5000) this.seen.clear();
    const name = `${target.name}.${randomBytes(8).toString("hex")}`;
    const involvedObject: k8s.V1ObjectReference = {
      apiVersion: target.apiVersion,
      kind: target.kind,
      name: target.name,
      ...(target.namespace ? { namespace: target.namespace } : {}),
      ...(target.uid ? { uid: target.uid } : {}),
    };
    await this.core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { name, namespace },
        involvedObject,
        type,
        reason,
        message,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: this.opts.component, host: this.opts.instance },
        reportingComponent: this.opts.component,
        reportingInstance: this.opts.instance,
      },
    });
    this.seen.set(key, { name, namespace, count: 1, at: now.getTime() });
  }
}
