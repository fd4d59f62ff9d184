/** Shared setup of the IPAM integration tests: pools, nodes, namespaces, an in-process controller. */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { API_VERSION, type IPAMBlock, type IPPoolSpec } from "../../api/index.js";
import { type ControllerContext, controllerInformers, nodeExistsFn } from "../../controllers/context.js";
import { type IpamPartsOptions, ipamControllers } from "../../controllers/ipam/index.js";
import { createStore } from "../../datastore/factory.js";
import type { Store } from "../../datastore/store.js";
import { testCluster } from "../../devenv/cluster.js";
import { type Started, startDetached } from "../../devenv/procs.js";
import { addressAt } from "../../ipam/index.js";
import { InformerCache, Manager, type Runnable } from "../../runtime/index.js";

export function setup() {
  const cluster = testCluster();
  // WEFT_DATASTORE=etcd (+ WEFT_ETCD_*) runs the same tests on etcd (etcd-ipam-*.test.ts); workers inherit it.
  const store = createStore(undefined, cluster.kc);
  const core = cluster.kc.makeApiClient(k8s.CoreV1Api);
  return { cluster, kc: cluster.kc, store, core };
}

export async function createPool(store: Store, name: string, spec: IPPoolSpec): Promise<void> {
  await store.create("IPPool", { apiVersion: API_VERSION, kind: "IPPool", metadata: { name }, spec });
}

/**
 * Every node a test file creates carries its pid, and the in-process controller of that file
 * watches only those: files run side by side on one apiserver, and a controller that saw another
 * file's nodes would claim blocks and VTEP addresses for them.
 */
const OWNER_LABEL = "weft.dev/test-owner";
const OWNER = String(process.pid);

export async function createNode(core: k8s.CoreV1Api, name: string, labels: Record<string, string> = {}) {
  await core.createNode({ body: { metadata: { name, labels: { ...labels, [OWNER_LABEL]: OWNER } } } });
}

export async function deleteNode(core: k8s.CoreV1Api, name: string): Promise<void> {
  try {
    await core.deleteNode({ name });
  } catch (err) {
    if (!(err instanceof k8s.ApiException && err.code === 404)) throw err;
  }
}

export async function ensureNamespace(core: k8s.CoreV1Api, name: string): Promise<void> {
  try {
    await core.createNamespace({ body: { metadata: { name } } });
  } catch (err) {
    if (!(err instanceof k8s.ApiException && err.code === 409)) throw err;
  }
}

export async function createPod(core: k8s.CoreV1Api, namespace: string, name: string): Promise<void> {
  await core.createNamespacedPod({
    namespace,
    body: { metadata: { name }, spec: { containers: [{ name: "c", image: "registry.invalid/pause" }] } },
  });
}

export async function deletePods(
  core: k8s.CoreV1Api,
  namespace: string,
  labelSelector?: string,
): Promise<void> {
  await core.deleteCollectionNamespacedPod({ namespace, labelSelector, gracePeriodSeconds: 0 });
}

export async function blocksOf(store: Store, pool: string): Promise<IPAMBlock[]> {
  return (await store.list("IPAMBlock")).items.filter((b) => b.spec.pool === pool);
}

/** Removes the pools (finalizers first: no controller may be left to drain them) and their blocks. */
export async function removePools(store: Store, pools: string[]): Promise<void> {
  const blocks = (await store.list("IPAMBlock")).items.filter((b) => pools.includes(b.spec.pool));
  await Promise.all(blocks.map((b) => store.delete("IPAMBlock", b.metadata.name)));
  for (const name of pools) {
    const p = await store.get("IPPool", name);
    if (!p) continue;
    if (p.metadata.finalizers?.length) {
      await store.mutate("IPPool", name, (x) => {
        x.metadata.finalizers = [];
        return x;
      });
    }
    await store.delete("IPPool", name);
  }
}

/** The IPAM parts of weft-controller in this process, scoped to the test's pools. */
export async function startController(
  kc: k8s.KubeConfig,
  store: Store,
  opts: IpamPartsOptions,
): Promise<{ ctx: ControllerContext; parts: Runnable[]; stop(): Promise<void> }> {
  const cache = new InformerCache(store, kc, { nodeSelector: `${OWNER_LABEL}=${OWNER}` });
  const ctx: ControllerContext = {
    store,
    kc,
    informers: controllerInformers(cache),
    nodeExists: nodeExistsFn(kc),
  };
  const parts = ipamControllers(ctx, opts);
  const manager = new Manager().addCache(cache);
  for (const p of parts) manager.add(p);
  await manager.start();
  return { ctx, parts, stop: () => manager.stop() };
}

/**
 * weft-controller as its own process for this test file, text logs to `log`: health on an
 * ephemeral loopback port, and only the pools and nodes labelled weft.dev/test=<tag> are its own.
 */
export function spawnController(kubeconfig: string, tag: string, log: string, flags: string[]): Started {
  const main = fileURLToPath(new URL("../../controllers/main.js", import.meta.url));
  const scope = `weft.dev/test=${tag}`;
  const scoped = [`--pool-selector=${scope}`, `--node-selector=${scope}`];
  const health = ["--health-port=0", "--health-host=127.0.0.1"];
  return startDetached(
    process.execPath,
    [main, `--kubeconfig=${kubeconfig}`, ...health, ...scoped, ...flags],
    log,
    { ...process.env, WEFT_LOG_FORMAT: "text" },
  );
}

export interface WorkerArgs {
  kubeconfig: string;
  id: number;
  pool: string;
  nodes: string[];
  count: number;
  inflight: number;
  out: string;
  namespace?: string;
}

export interface Worker {
  id: number;
  pid: number;
  out: string;
  exited: Promise<number | null>;
  /** null while it runs. */
  exitCode(): number | null;
  stderr(): string;
}

/** One allocator process (workers/ipam-worker.ts); its held addresses go to args.out, one JSON line each. */
export function spawnWorker(args: WorkerArgs): Worker {
  const script = fileURLToPath(new URL("./workers/ipam-worker.js", import.meta.url));
  const child = spawn(process.execPath, [script, JSON.stringify(args)], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, WEFT_LOG_LEVEL: "warn" },
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    id: args.id,
    pid: child.pid!,
    out: args.out,
    exited,
    exitCode: () => child.exitCode ?? (child.signalCode ? -1 : null),
    stderr: () => err,
  };
}

export interface Held {
  handle: string;
  ip: string;
  node: string;
  block: string;
}

export function readHeld(file: string): Held[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Held];
      } catch {
        return []; // a line cut short by SIGKILL
      }
    });
}

export function killWorker(w: Worker): void {
  try {
    process.kill(w.pid, "SIGKILL");
  } catch {
    /* already gone */
  }
}

/**
 * Allocator processes of one test file over a pool of its own, spread over nodes of its own: the
 * pool selects only these nodes, so a controller of another test file never uses them.
 */
export class WorkerFleet {
  readonly pool: string;
  readonly nodes: string[];
  readonly workers: Worker[] = [];
  private readonly dir: string;

  constructor(
    private readonly env: ReturnType<typeof setup>,
    readonly tag: string,
    nodeCount: number,
  ) {
    this.pool = `${tag}-pool`;
    this.nodes = Array.from({ length: nodeCount }, (_, i) => `${tag}-n${i}`);
    this.dir = mkdtempSync(join(tmpdir(), `${tag}-`));
  }

  /** Creates the pool and the nodes, then starts `processes` workers with these settings. */
  async start(
    cidr: string,
    processes: number,
    each: Pick<WorkerArgs, "count" | "inflight" | "namespace">,
  ): Promise<void> {
    const { store, core, cluster } = this.env;
    const selector = { "weft.dev/test": this.tag };
    await createPool(store, this.pool, { cidr, nodeSelector: { matchLabels: selector } });
    await Promise.all(this.nodes.map((n) => createNode(core, n, selector)));
    for (let id = 0; id < processes; id++) {
      const out = join(this.dir, `w${id}.jsonl`);
      this.workers.push(
        spawnWorker({ kubeconfig: cluster.kubeconfig, id, pool: this.pool, nodes: this.nodes, out, ...each }),
      );
    }
  }

  /** SIGKILLs the workers that still run (an exited one's pid may belong to another process by now). */
  kill(): void {
    for (const w of this.workers) if (w.exitCode() === null) killWorker(w);
  }

  /** Kills the workers, then removes the nodes, the pool with its blocks and the workers' files. */
  async remove(): Promise<void> {
    this.kill();
    await Promise.all(this.nodes.map((n) => deleteNode(this.env.core, n)));
    await removePools(this.env.store, [this.pool]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Every allocation of the pool's blocks as ip -> handle, failing on an address held twice. */
export function allocationsByIp(blocks: IPAMBlock[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const b of blocks) {
    for (const a of b.spec.allocations) {
      const ip = addressAt(b.spec, a.ordinal);
      if (out.has(ip)) throw new Error(`${ip} is held by ${out.get(ip)} and ${a.handle}`);
      out.set(ip, a.handle);
    }
  }
  return out;
}
