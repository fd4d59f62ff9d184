import type { Etcd3, IKeyValue, IWatchResponse } from "etcd3";
import type { StopWatch, WatchEvent, WatchHandler } from "./store.js";

export interface EtcdWatchRequest {
  /** Keys starting with this (including the trailing /). */
  prefix: string;
  /** Events after this revision ("" or undefined: from now). */
  fromRevision: string | undefined;
  /** The object a put carries. */
  decode(kv: IKeyValue): unknown;
  /** The last state of a deleted object, with the delete's revision as its resourceVersion. */
  decodeDeleted(kv: IKeyValue, prev: IKeyValue | undefined): unknown;
}

/** The key just past every key with this prefix (etcd's range_end for a prefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/**
 * One etcd watch stream per Store watch, with the Store's terminal events: EXPIRED when the
 * requested revision was compacted away, CLOSED when the stream fails or ends (the caller resumes
 * from the last revision it saw; nothing here reconnects behind its back). Progress notifications
 * become BOOKMARKs, so a quiet collection still advances its resume point.
 */
export function etcdWatch<T>(client: Etcd3, req: EtcdWatchRequest, handler: WatchHandler<T>): StopWatch {
  let done = false;
  let cancel: (() => void) | undefined;
  const emit = (ev: WatchEvent<T>) => {
    if (!done) handler(ev);
  };
  const end = (ev: WatchEvent<T>) => {
    if (done) return;
    emit(ev);
    done = true;
    cancel?.();
  };
  const key = Buffer.from(req.prefix);
  let start: string | undefined;
  if (req.fromRevision) {
    try {
      start = (BigInt(req.fromRevision) + 1n).toString();
    } catch {
      queueMicrotask(() => end({ type: "EXPIRED", message: `not an etcd revision: ${req.fromRevision}` }));
      return () => {
        done = true;
      };
    }
  }
  const onResponse = (res: IWatchResponse) => {
    if (done) return;
    if (res.compact_revision && res.compact_revision !== "0") {
      return end({
        type: "EXPIRED",
        message: `revision ${start ?? "?"} was compacted (oldest kept: ${res.compact_revision})`,
      });
    }
    if (res.canceled) {
      return end({
        type: "CLOSED",
        error: new Error(`etcd canceled the watch: ${res.cancel_reason || "no reason"}`),
      });
    }
    if (res.created) return;
    if (res.events.length === 0) {
      if (res.header?.revision) emit({ type: "BOOKMARK", resourceVersion: String(res.header.revision) });
      return;
    }
    for (const ev of res.events) {
      if (done) return;
      try {
        if (ev.type === "Delete") {
          emit({ type: "DELETED", object: req.decodeDeleted(ev.kv, ev.prev_kv ?? undefined) as T });
        } else {
          const type = ev.kv.create_revision === ev.kv.mod_revision ? "ADDED" : "MODIFIED";
          emit({ type, object: req.decode(ev.kv) as T });
        }
      } catch (err) {
        return end({
          type: "CLOSED",
          error: new Error(`undecodable value at ${ev.kv.key.toString()}: ${String(err)}`),
        });
      }
    }
  };
  client.watchClient.watch().then(
    (stream) => {
      // Half-close first: a cancelled stream that is still writable makes etcd3 treat the
      // CANCELLED error as a host failure and reset every connection (other watches included).
      cancel = () => {
        stream.end();
        stream.cancel();
      };
      if (done) return cancel();
      stream.on("data", onResponse);
      stream.on("error", (err: Error) => end({ type: "CLOSED", error: err }));
      stream.on("end", () => end({ type: "CLOSED", error: new Error("etcd watch stream ended") }));
      stream.write({
        create_request: {
          key,
          range_end: prefixEnd(key),
          prev_kv: true,
          progress_notify: true,
          ...(start ? { start_revision: start } : {}),
        },
      });
    },
    (err: unknown) => end({ type: "CLOSED", error: err instanceof Error ? err : new Error(String(err)) }),
  );
  return () => {
    done = true;
    cancel?.();
  };
}
