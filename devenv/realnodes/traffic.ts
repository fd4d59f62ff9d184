import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { AGNHOST_IMAGE } from "../images/recipes.js";
import { alive, sleep, waitFor } from "../procs.js";
import { repoRoot } from "../tools.js";
import type { RealCluster } from "./cluster.js";
import { podNetnsPid } from "./pods.js";
import { type PathReport, type PathStats, type ProbePod, splitLines } from "./probe.js";

/**
 * Continuous traffic between pods on every pair of nodes, measured from the pods' own network
 * namespaces so that it keeps running, and keeps being measured, while the apiserver is down:
 * one probe pod pinned to each node, and in each pod's namespace a prober (prober.ts) that pings
 * every other probe pod and holds a TCP connection to each. The probers are children of this
 * process (entered into the pods' namespaces with nsenter) and end with it.
 */

export const PROBE = { namespace: "default", app: "fault-probe", port: 7777 } as const;

export function probePodManifest(node: string): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${PROBE.app}-${node}
  namespace: ${PROBE.namespace}
  labels: {app: ${PROBE.app}}
spec:
  nodeName: ${node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: pause
    image: ${AGNHOST_IMAGE}
    imagePullPolicy: Never
    args: [pause]
`;
}

interface PodInfo extends ProbePod {
  uid: string;
}

interface PodList {
  items: Array<{
    metadata: { name: string; uid: string; deletionTimestamp?: string };
    spec: { nodeName?: string };
    status: { podIP?: string; phase?: string };
  }>;
}

/** One probe pod per node (replacing any of an earlier scenario), Running with an address. */
export async function deployProbePods(
  cluster: RealCluster,
  nodes: string[],
  timeoutMs = 180_000,
): Promise<PodInfo[]> {
  await cluster.kubectl(["apply", "-f", "-"], nodes.map(probePodManifest).join("---\n"));
  return waitFor(
    `probe pods Running on ${nodes.join(", ")}`,
    async () => {
      const list = JSON.parse(
        await cluster.kubectl([
          ...["-n", PROBE.namespace, "get", "pods", "-l", `app=${PROBE.app}`, "-o", "json"],
        ]),
      ) as PodList;
      const pods = list.items
        .filter((p) => !p.metadata.deletionTimestamp && p.status.phase === "Running" && p.status.podIP)
        .filter((p) => nodes.includes(p.spec.nodeName ?? ""))
        .map((p) => ({
          pod: p.metadata.name,
          uid: p.metadata.uid,
          node: p.spec.nodeName as string,
          ip: p.status.podIP as string,
        }));
      return pods.length === nodes.length ? pods.sort((a, b) => a.node.localeCompare(b.node)) : undefined;
    },
    timeoutMs,
    500,
  );
}

/** Deletes the probe pods (and waits until they are gone, so a next mesh starts clean). */
export async function deleteProbePods(cluster: RealCluster): Promise<void> {
  await cluster.kubectl([
    ...["-n", PROBE.namespace, "delete", "pods", "-l", `app=${PROBE.app}`],
    ...["--wait=true", "--timeout=120s", "--ignore-not-found"],
  ]);
}

interface Prober {
  pod: PodInfo;
  child: ChildProcess;
  last: PathStats[];
  final: boolean;
  exited: Promise<void>;
  stderr: string;
}

export class TrafficMesh {
  private constructor(
    private readonly probers: Prober[],
    readonly pods: PodInfo[],
  ) {}

  /**
   * Starts a prober in every probe pod's network namespace and waits until every path has
   * answered once over ICMP and over TCP (the mesh measures a working network from its start).
   */
  static async start(cluster: RealCluster, pods: PodInfo[], timeoutMs = 60_000): Promise<TrafficMesh> {
    const probers: Prober[] = [];
    const mesh = new TrafficMesh(probers, pods);
    try {
      for (const pod of pods) {
        const node = cluster.state.nodes.find((n) => n.name === pod.node);
        if (!node) throw new Error(`probe pod ${pod.pod} is on ${pod.node}, not a node of this cluster`);
        const pid = podNetnsPid(node, pod.uid);
        if (!pid)
          throw new Error(`no process of pod ${pod.pod} (uid ${pod.uid}) found in ${node.cgroupRoot}`);
        const targets = pods.filter((p) => p !== pod).map((p) => p.ip);
        // stdin is its lifeline, and the parent-death signal backs that up
        const child = spawn(
          "setpriv",
          [
            ...["--pdeathsig", "KILL", "--", "nsenter"],
            `--net=/proc/${pid}/ns/net`,
            "--",
            process.execPath,
            join(repoRoot, "dist", "devenv", "realnodes", "prober.js"),
            ...["--self", pod.ip, "--targets", targets.join(","), "--port", String(PROBE.port)],
          ],
          { stdio: ["pipe", "pipe", "pipe"] },
        );
        const prober: Prober = {
          pod,
          child,
          last: [],
          final: false,
          stderr: "",
          exited: new Promise((resolve) => child.once("close", () => resolve())),
        };
        let rest = "";
        child.stdout?.setEncoding("utf8");
        child.stdout?.on("data", (chunk: string) => {
          const split = splitLines(rest, chunk);
          rest = split.rest;
          for (const line of split.lines) {
            try {
              const msg = JSON.parse(line) as { type: string; paths: PathStats[] };
              prober.last = msg.paths;
              if (msg.type === "final") prober.final = true;
            } catch {
              /* not a report line */
            }
          }
        });
        child.stderr?.on("data", (b: Buffer) => {
          prober.stderr = (prober.stderr + b.toString()).slice(-4000);
        });
        child.stdin?.on("error", () => undefined);
        probers.push(prober);
      }
      await waitFor(
        "every path of the probe mesh answering (ICMP and TCP)",
        () => {
          for (const p of probers)
            if (p.child.exitCode !== null) throw new Error(`prober in ${p.pod.pod} exited: ${p.stderr}`);
          const all = probers.flatMap((p) => p.last);
          const want = pods.length * (pods.length - 1);
          return all.length === want && all.every((s) => s.icmp.received > 0 && s.tcp.echoes > 0)
            ? true
            : undefined;
        },
        timeoutMs,
        500,
      );
      return mesh;
    } catch (err) {
      await mesh.stop();
      throw err;
    }
  }

  /** The current counts of every path (cumulative since start). */
  stats(): PathStats[] {
    return this.probers.flatMap((p) => p.last);
  }

  /**
   * Stops every prober (its stdin closes; it settles its pings and prints its final counts) and
   * returns the report. Paths touching a node in `disturbed` are marked as such.
   */
  async stop(disturbed: string[] = []): Promise<PathReport[]> {
    for (const p of this.probers) p.child.stdin?.end();
    const deadline = Date.now() + 15_000;
    for (const p of this.probers) {
      while (p.child.exitCode === null && p.child.signalCode === null && Date.now() < deadline)
        await Promise.race([p.exited, sleep(200)]);
      const pid = p.child.pid;
      if (pid && alive(pid)) {
        p.child.kill("SIGKILL");
        await p.exited;
      }
    }
    return this.report(disturbed);
  }

  report(disturbed: string[] = []): PathReport[] {
    const byIP = new Map(this.pods.map((p) => [p.ip, p]));
    return this.stats().map((s) => {
      const from = byIP.get(s.from);
      const to = byIP.get(s.to);
      return {
        fromNode: from?.node ?? s.from,
        toNode: to?.node ?? s.to,
        fromPod: from?.pod ?? s.from,
        toPod: to?.pod ?? s.to,
        stats: s,
        disturbed: disturbed.includes(from?.node ?? "") || disturbed.includes(to?.node ?? ""),
      };
    });
  }

  /** Whether every prober printed its final counts (a prober killed early reports its last ones). */
  get complete(): boolean {
    return this.probers.every((p) => p.final);
  }
}
