import type * as k8s from "@kubernetes/client-node";
import type { Logger } from "../lib/index.js";
import { Informer } from "./informer.js";
import { coreListWatch } from "./listwatch.js";

/**
 * Watches exactly the Secrets it is told about, each by name (a field selector on
 * metadata.name), so a changed or deleted Secret is known within a watch event instead of at the
 * next periodic resync, and no other Secret of the namespace is ever read. Values stay in the
 * informers' caches; nothing here logs them.
 */

export interface SecretName {
  namespace: string;
  name: string;
}

export type SecretLookup =
  | { state: "found"; value: string }
  | { state: "missing-key" }
  | { state: "not-found" }
  /** Not listed yet (a new watch, or the apiserver refusing): neither found nor known to be gone. */
  | { state: "unknown" };

export class NamedSecrets {
  private readonly watches = new Map<string, Informer<k8s.V1Secret>>();

  constructor(
    private readonly kc: k8s.KubeConfig,
    /** Called on every add, change or delete of a watched Secret. */
    private readonly onChange: () => void,
    private readonly logger?: Logger,
  ) {}

  private static key(s: SecretName): string {
    return `${s.namespace}/${s.name}`;
  }

  /**
   * Watches these Secrets and no others: new names are watched (and listed, up to waitMs, so the
   * caller can use them at once), names no longer wanted are dropped.
   */
  async watchOnly(names: readonly SecretName[], waitMs = 10_000): Promise<void> {
    const wanted = new Map(names.map((n) => [NamedSecrets.key(n), n]));
    for (const [key, inf] of this.watches) {
      if (wanted.has(key)) continue;
      this.watches.delete(key);
      await inf.stop();
    }
    const fresh: Array<Informer<k8s.V1Secret>> = [];
    for (const [key, n] of wanted) {
      if (this.watches.has(key)) continue;
      const inf = new Informer(
        coreListWatch<k8s.V1Secret>(this.kc, "Secret", {
          namespace: n.namespace,
          fieldSelector: `metadata.name=${n.name}`,
        }),
        { resyncMs: 0, ...(this.logger ? { logger: this.logger } : {}) },
      );
      const changed = () => this.onChange();
      inf.on({ add: changed, update: (o, x) => o !== x && changed(), delete: changed });
      this.watches.set(key, inf);
      inf.start();
      fresh.push(inf);
    }
    if (fresh.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(fresh.map((i) => i.waitForSync())),
      new Promise<void>((r) => {
        timer = setTimeout(r, waitMs);
      }),
    ]);
    if (timer) clearTimeout(timer);
  }

  /** One key of a watched Secret. */
  lookup(s: SecretName, key: string): SecretLookup {
    const inf = this.watches.get(NamedSecrets.key(s));
    if (!inf?.hasSynced()) return { state: "unknown" };
    const secret = inf.get(NamedSecrets.key(s));
    if (!secret) return { state: "not-found" };
    const data = secret.data?.[key];
    if (data !== undefined) return { state: "found", value: Buffer.from(data, "base64").toString("utf8") };
    const str = secret.stringData?.[key];
    if (str !== undefined) return { state: "found", value: str };
    return { state: "missing-key" };
  }

  async stop(): Promise<void> {
    const all = [...this.watches.values()];
    this.watches.clear();
    await Promise.all(all.map((i) => i.stop()));
  }
}
