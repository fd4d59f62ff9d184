import type * as k8s from "@kubernetes/client-node";
import { createStore, type Store } from "../datastore/index.js";
import { loadKubeConfig } from "../lib/index.js";

/** What every subcommand gets: lazily built clients and where to print. */
export interface CliContext {
  kubeconfig: string | undefined;
  kc(): k8s.KubeConfig;
  store(): Store;
  out(text: string): void;
  err(text: string): void;
}

/**
 * One subcommand, e.g. `ipam check`. Each lives in its own module and is listed in cli/main.ts;
 * it parses its own arguments and returns the process exit code.
 */
export interface Command {
  /** Words that select it: ["ipam", "check"]. */
  path: string[];
  summary: string;
  usage: string;
  run(ctx: CliContext, args: string[]): Promise<number>;
}

/** A usage error: printed with the command's usage, exit code 2. */
export class UsageError extends Error {}

export function makeContext(kubeconfig: string | undefined, datastore?: string): CliContext {
  let kc: k8s.KubeConfig | undefined;
  let store: Store | undefined;
  return {
    kubeconfig,
    kc: () => {
      kc ??= loadKubeConfig(kubeconfig);
      return kc;
    },
    store() {
      // --datastore or WEFT_DATASTORE, like the controller and the agent (etcd reads WEFT_ETCD_*).
      store ??= createStore(datastore, this.kc(), { fieldManager: "weftctl" });
      return store;
    },
    out: (t) => process.stdout.write(t.endsWith("\n") ? t : `${t}\n`),
    err: (t) => process.stderr.write(t.endsWith("\n") ? t : `${t}\n`),
  };
}
