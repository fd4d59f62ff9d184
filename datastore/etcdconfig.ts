import { readFileSync } from "node:fs";
import { Etcd3, type IOptions, isRecoverableError } from "etcd3";
import { jitteredBackoff, sleep } from "../lib/index.js";

/** Where etcd is and how to authenticate (flags or WEFT_ETCD_* environment variables). */
export interface EtcdConnectionOptions {
  /** https://host:port URLs (http:// only without certificates). */
  endpoints: string[];
  /** PEM files: CA that signed etcd's serving certificate, and the client certificate and key. */
  ca?: string;
  cert?: string;
  key?: string;
  /** Key prefix of weft.dev objects (default /weft/v1alpha1). */
  prefix?: string;
}

export const DEFAULT_ETCD_PREFIX = "/weft/v1alpha1";

/** Reads WEFT_ETCD_ENDPOINTS (comma separated), WEFT_ETCD_CA, WEFT_ETCD_CERT, WEFT_ETCD_KEY, WEFT_ETCD_PREFIX. */
export function etcdOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): EtcdConnectionOptions {
  const endpoints = (env.WEFT_ETCD_ENDPOINTS ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (endpoints.length === 0) {
    throw new Error(
      "datastore etcd: no endpoints; set WEFT_ETCD_ENDPOINTS (e.g. https://127.0.0.1:2379) and WEFT_ETCD_CA, WEFT_ETCD_CERT, WEFT_ETCD_KEY",
    );
  }
  const opts: EtcdConnectionOptions = { endpoints };
  if (env.WEFT_ETCD_CA) opts.ca = env.WEFT_ETCD_CA;
  if (env.WEFT_ETCD_CERT) opts.cert = env.WEFT_ETCD_CERT;
  if (env.WEFT_ETCD_KEY) opts.key = env.WEFT_ETCD_KEY;
  if (env.WEFT_ETCD_PREFIX) opts.prefix = env.WEFT_ETCD_PREFIX;
  return opts;
}

/** Checks the options and says exactly what is wrong (missing half of a key pair, TLS without CA). */
export function validateEtcdOptions(o: EtcdConnectionOptions): void {
  if (o.endpoints.length === 0) throw new Error("datastore etcd: no endpoints");
  for (const e of o.endpoints) {
    if (!/^https?:\/\/[^/]+$/.test(e)) throw new Error(`datastore etcd: bad endpoint ${JSON.stringify(e)}`);
  }
  if (Boolean(o.cert) !== Boolean(o.key)) {
    throw new Error("datastore etcd: a client certificate needs both WEFT_ETCD_CERT and WEFT_ETCD_KEY");
  }
  const tls = o.endpoints.some((e) => e.startsWith("https://"));
  if (tls && !o.ca) throw new Error("datastore etcd: https endpoints need WEFT_ETCD_CA");
  if (o.prefix !== undefined && !/^\/[^\s]*[^/\s]$/.test(o.prefix)) {
    throw new Error(
      `datastore etcd: prefix ${JSON.stringify(o.prefix)} must start with / and not end with /`,
    );
  }
}

type Policy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;

/** No circuit breaker: a single etcd that comes back is used at once, not after a cool-down. */
const passThrough = {
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
  execute: async <T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T) =>
    fn({ signal: new AbortController().signal }),
} as unknown as Policy;

/**
 * Retries calls that failed because etcd was unreachable, with jittered backoff (about 10 s in
 * all). Safe for every write the backends make: they are transactions guarded by a revision
 * compare, so a retry of one that did apply fails its compare instead of applying twice.
 */
function retryUnavailable(attempts: number) {
  return {
    onSuccess: () => ({ dispose() {} }),
    onFailure: () => ({ dispose() {} }),
    async execute<T>(fn: (ctx: { signal: AbortSignal; attempt: number }) => PromiseLike<T> | T): Promise<T> {
      const signal = new AbortController().signal;
      for (let attempt = 0; ; attempt++) {
        try {
          return await fn({ signal, attempt });
        } catch (err) {
          if (attempt + 1 >= attempts || !(err instanceof Error) || !isRecoverableError(err)) throw err;
          await sleep(100 + jitteredBackoff(attempt, 200, 3000));
        }
      }
    },
  };
}

/**
 * An etcd3 client: TLS with client certificates, calls retried with backoff while etcd is
 * unreachable (a restart of etcd is a pause, not an error), bounded call deadlines, gRPC
 * keepalives so a dead connection is noticed.
 */
export function createEtcdClient(o: EtcdConnectionOptions): Etcd3 {
  validateEtcdOptions(o);
  const opts: IOptions = {
    hosts: o.endpoints,
    dialTimeout: 5000,
    grpcOptions: {
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 5_000,
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 10_000 }),
    faultHandling: {
      host: () => passThrough,
      global: retryUnavailable(8) as unknown as Policy,
    },
  };
  if (o.ca) {
    opts.credentials = { rootCertificate: readFileSync(o.ca) };
    if (o.cert && o.key) {
      opts.credentials.certChain = readFileSync(o.cert);
      opts.credentials.privateKey = readFileSync(o.key);
    }
  }
  return new Etcd3(opts);
}
