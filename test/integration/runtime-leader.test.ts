import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { testCluster } from "../../devenv/cluster.js";
import { alive, sleep, startDetached, stopPid, waitFor } from "../../devenv/procs.js";

const script = join(dirname(fileURLToPath(import.meta.url)), "runtime-elector-support.js");
const NAMESPACE = "default";

interface Note {
  what: string;
  id: string;
  at: number;
}

/** The shared log all replicas of one test append to. */
function readNotes(file: string): Note[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [what, id, at] = l.split(" ");
      return { what: what!, id: id!, at: Number(at) };
    });
}

/** Leadership intervals as the replicas acted them out: from start to stop, or to the last tick when killed. */
function intervals(notes: Note[]): Array<{ id: string; from: number; to: number }> {
  const out: Array<{ id: string; from: number; to: number }> = [];
  const open = new Map<string, { from: number; to: number }>();
  for (const n of notes) {
    const cur = open.get(n.id);
    if (n.what === "start") open.set(n.id, { from: n.at, to: n.at });
    else if (n.what === "tick" && cur) cur.to = n.at;
    else if (n.what === "stop" && cur) {
      out.push({ id: n.id, from: cur.from, to: n.at });
      open.delete(n.id);
    }
  }
  for (const [id, cur] of open) out.push({ id, ...cur });
  return out.sort((a, b) => a.from - b.from);
}

function assertNeverTwoLeaders(notes: Note[]): void {
  const iv = intervals(notes);
  for (let i = 1; i < iv.length; i++) {
    const prev = iv[i - 1]!;
    const cur = iv[i]!;
    assert.ok(
      cur.from > prev.to,
      `${cur.id} started leading at ${cur.from} while ${prev.id} still acted until ${prev.to}: ${JSON.stringify(iv)}`,
    );
  }
}

/** A TCP relay to the apiserver that the test can turn into a black hole (a partitioned replica). */
async function relay(target: URL) {
  const sockets = new Set<net.Socket>();
  let blackhole = false;
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
  };
  const server = net.createServer((client) => {
    track(client);
    if (blackhole) return; // accept and never answer
    const upstream = net.connect(Number(target.port), target.hostname);
    track(upstream);
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    partition() {
      blackhole = true;
      for (const s of sockets) s.destroy();
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe("leader election with replicas in separate processes", () => {
  const cluster = testCluster();
  const coord = cluster.kc.makeApiClient(k8s.CoordinationV1Api);
  const pids: number[] = [];
  const files: string[] = [];
  const cleanups: Array<() => void> = [];
  let seq = 0;

  after(async () => {
    await Promise.all(pids.map((p) => stopPid(p, 2000)));
    for (const c of cleanups) c();
    for (const f of files) rmSync(f, { force: true });
  });

  function setup(timing: { leaseMs: number; renewMs: number; retryMs: number }) {
    const n = seq++;
    const lease = `rt-leader-${process.pid}-${n}`;
    const log = join(tmpdir(), `weft-${lease}.log`);
    files.push(log);
    const procs = new Map<string, number>();
    const spawn = (id: string, kubeconfig = cluster.kubeconfig) => {
      const out = join(tmpdir(), `weft-${lease}-${id}.out`);
      files.push(out);
      const { pid } = startDetached(
        process.execPath,
        [
          "--enable-source-maps",
          script,
          kubeconfig,
          NAMESPACE,
          lease,
          id,
          log,
          String(timing.leaseMs),
          String(timing.renewMs),
          String(timing.retryMs),
        ],
        out,
      );
      pids.push(pid);
      procs.set(id, pid);
      return pid;
    };
    const notes = () => readNotes(log);
    const outputs = () =>
      [...procs.keys()]
        .map((id) => {
          const f = join(tmpdir(), `weft-${lease}-${id}.out`);
          return `--- ${id}\n${existsSync(f) ? readFileSync(f, "utf8").slice(-2000) : ""}`;
        })
        .join("\n");
    const starts = () => notes().filter((x) => x.what === "start");
    const read = () => coord.readNamespacedLease({ name: lease, namespace: NAMESPACE });
    const holder = async () => (await read()).spec?.holderIdentity;
    /** When the holder last renewed, by its own clock (the same machine's clock as ours). */
    const renewedAt = async () => new Date((await read()).spec?.renewTime ?? 0).getTime();
    return { lease, log, spawn, procs, notes, starts, outputs, holder, renewedAt };
  }

  it("a SIGKILLed leader is replaced once its lease runs out, and two replicas never lead at once", async () => {
    const timing = { leaseMs: 3000, renewMs: 2000, retryMs: 250 };
    const t = setup(timing);
    t.spawn("a");
    t.spawn("b");
    const first = await waitFor("a first leader", () => t.starts()[0], 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${t.outputs()}`);
    });
    // Both run side by side for a while: the follower must stay a follower.
    await sleep(timing.leaseMs);
    assert.deepEqual(
      t.starts().map((s) => s.id),
      [first.id],
      "only one replica may lead while the leader lives",
    );
    assert.equal(await t.holder(), first.id);

    const leaderPid = t.procs.get(first.id)!;
    const renewedBeforeKill = await t.renewedAt();
    process.kill(leaderPid, "SIGKILL");
    const killedAt = Date.now();
    await waitFor("the SIGKILLed leader to die", () => (alive(leaderPid) ? undefined : true), 5000);
    // How soon is a measurement (printed), not an assertion: a loaded machine delays timers.
    const next = await waitFor(
      "the other replica to take over",
      () => t.starts().find((s) => s.id !== first.id),
      timing.leaseMs * 10,
      20,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${t.outputs()}`);
    });
    console.log(`# takeover after SIGKILL: ${next.at - killedAt} ms (lease ${timing.leaseMs} ms)`);
    // A lower bound load cannot break: the last renewal came no earlier than the one read before
    // the kill, and the follower counts the lease duration from when it saw that renewal.
    assert.ok(
      next.at >= renewedBeforeKill + timing.leaseMs,
      `took over ${renewedBeforeKill + timing.leaseMs - next.at} ms before the lease renewed at ${new Date(renewedBeforeKill).toISOString()} ran out`,
    );
    await waitFor("the lease to name the new leader", async () =>
      (await t.holder()) === next.id ? true : undefined,
    );
    await sleep(500);
    assertNeverTwoLeaders(t.notes());
    assert.ok(
      t.notes().some((x) => x.what === "tick" && x.id === next.id && x.at > next.at),
      "the new leader acts",
    );
  });

  it("a leader stopped with SIGTERM releases the lease, so the next one starts without waiting for expiry", async () => {
    // A lease far longer than the test waits: only a release lets the follower in this soon.
    const timing = { leaseMs: 60_000, renewMs: 40_000, retryMs: 250 };
    const t = setup(timing);
    t.spawn("a");
    t.spawn("b");
    const first = await waitFor("a first leader", () => t.starts()[0], 30_000);
    await waitFor("the follower to campaign", () =>
      t.notes().filter((x) => x.what === "candidate").length === 2 ? true : undefined,
    );
    const leaderPid = t.procs.get(first.id)!;
    process.kill(leaderPid, "SIGTERM");
    await waitFor("the leader to exit", () => (alive(leaderPid) ? undefined : true), 15_000);
    const next = await waitFor(
      "the other replica to take over after the release",
      () => t.starts().find((s) => s.id !== first.id),
      timing.leaseMs / 3,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${t.outputs()}`);
    });
    assert.ok(
      t.notes().some((x) => x.what === "stop" && x.id === first.id),
      "the stopped leader reported the end of its leadership",
    );
    assert.equal(await t.holder(), next.id);
    assertNeverTwoLeaders(t.notes());
  });

  it("a leader cut off from the apiserver stops acting before another replica starts", async () => {
    const timing = { leaseMs: 3000, renewMs: 2000, retryMs: 250 };
    const t = setup(timing);
    const server = new URL(cluster.kc.getCurrentCluster()!.server);
    const proxy = await relay(server);
    cleanups.push(() => proxy.close());
    const kubeconfig = join(tmpdir(), `weft-${t.lease}-relay.kubeconfig`);
    files.push(kubeconfig);
    writeFileSync(
      kubeconfig,
      readFileSync(cluster.kubeconfig, "utf8").replaceAll(server.origin, `https://127.0.0.1:${proxy.port}`),
    );
    t.spawn("cut", kubeconfig);
    await waitFor("the relayed replica to lead", () => t.starts().find((s) => s.id === "cut"), 30_000).catch(
      (e: Error) => {
        throw new Error(`${e.message}\n${t.outputs()}`);
      },
    );
    t.spawn("direct");
    await waitFor("the second replica to campaign", () =>
      t.notes().some((x) => x.what === "candidate" && x.id === "direct") ? true : undefined,
    );
    await sleep(timing.retryMs * 4);
    proxy.partition();
    const stopped = await waitFor(
      "the cut-off leader to give up",
      () => t.notes().find((x) => x.what === "stop" && x.id === "cut"),
      30_000,
    );
    const next = await waitFor(
      "the connected replica to take over",
      () => t.starts().find((s) => s.id === "direct"),
      timing.leaseMs + 10_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${t.outputs()}`);
    });
    assert.ok(next.at > stopped.at, "the new leader started only after the old one stopped acting");
    await sleep(500);
    assertNeverTwoLeaders(t.notes());
    // Having lost, the cut-off replica exits so that it restarts clean.
    await waitFor(
      "the cut-off replica to exit",
      () => (alive(t.procs.get("cut")!) ? undefined : true),
      15_000,
    );
    assert.ok(t.notes().some((x) => x.what === "exit" && x.id === "cut"));
  });
});
