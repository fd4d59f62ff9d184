import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { makeCerts } from "./certs.js";
import { freePort } from "./ports.js";
import { alive, cmdline, startDetached, stopPid, waitFor } from "./procs.js";
import { repoRoot, tool } from "./tools.js";

const execFileP = promisify(execFile);

/** What a running control plane leaves on disk so that another process can use or stop it. */
export interface ControlPlaneState {
  dir: string;
  kubeconfig: string;
  server: string;
  etcdEndpoint: string;
  etcdPid: number;
  apiserverPid: number;
  /** The process that owns it; a test run's leftovers are reaped once this pid is gone. */
  ownerPid?: number;
  caCert: string;
  caKey: string;
}

export interface StartOptions {
  /** Directory for certificates, data and logs; a fresh temporary one when omitted. */
  dir?: string;
  /** Apply crds/ and wait until every CRD is Established (default true). */
  applyCrds?: boolean;
  /** Record this pid as the owner, so a later start can reap the leftovers if it dies. */
  ownerPid?: number;
  /**
   * kube-apiserver flags beyond the defaults; one naming a default flag replaces it (a flag given
   * with "-" as its value, e.g. "--disable-admission-plugins=-", removes it). Real-node clusters
   * need theirs at the first start.
   */
  apiserverArgs?: string[];
  /** Extra subject alternative names (IP:... or DNS:...) of the apiserver's serving certificate. */
  serverSANs?: string[];
}

/** Defaults overridden by flag name: later flags replace earlier ones, "--flag=-" drops one. */
export function mergeFlags(defaults: string[], overrides: string[]): string[] {
  const name = (f: string) => f.split("=", 1)[0] as string;
  const byName = new Map<string, string>();
  for (const f of [...defaults, ...overrides]) {
    byName.delete(name(f)); // an override moves to the end, after what it depends on
    byName.set(name(f), f);
  }
  return [...byName.values()].filter((f) => !f.endsWith("=-"));
}

const TMP_PREFIX = "weft-cp-";

function stateFile(dir: string): string {
  return join(dir, "state.json");
}

/** Records a control plane's state (its pids after a restart, for whoever stops it). */
export function writeState(state: ControlPlaneState): void {
  writeFileSync(stateFile(state.dir), JSON.stringify(state, null, 2));
}

export function readState(dir: string): ControlPlaneState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(dir), "utf8")) as ControlPlaneState;
  } catch {
    return undefined;
  }
}

/** Stops the processes of a control plane by pid (only if they still run from that directory). */
export async function stopControlPlane(state: ControlPlaneState, removeDir = true): Promise<void> {
  for (const pid of [state.apiserverPid, state.etcdPid]) {
    if (pid && alive(pid) && cmdline(pid).includes(state.dir)) await stopPid(pid, 10000);
  }
  if (removeDir) rmSync(state.dir, { recursive: true, force: true });
}

/** Control planes of earlier test runs whose owner died (killed runner, ^C) are stopped and removed. */
export async function reapLeftovers(): Promise<number> {
  let reaped = 0;
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(TMP_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const state = readState(dir);
    if (state?.ownerPid && alive(state.ownerPid)) continue;
    if (state) await stopControlPlane(state, false);
    rmSync(dir, { recursive: true, force: true });
    reaped++;
  }
  return reaped;
}

function kubeconfigYaml(server: string, ca: string, cert: string, key: string, user = "weft-admin"): string {
  const b64 = (f: string) => readFileSync(f).toString("base64");
  return `apiVersion: v1
kind: Config
clusters:
- name: weft-test
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(ca)}
users:
- name: ${user}
  user:
    client-certificate-data: ${b64(cert)}
    client-key-data: ${b64(key)}
contexts:
- name: weft-test
  context: {cluster: weft-test, user: ${user}}
current-context: weft-test
`;
}

/** Kubeconfig for a bearer token (service account tokens from TokenRequest) against the same server. */
export function tokenKubeconfig(state: ControlPlaneState, token: string, user: string): string {
  const ca = readFileSync(state.caCert).toString("base64");
  return `apiVersion: v1
kind: Config
clusters:
- name: weft-test
  cluster: {server: "${state.server}", certificate-authority-data: ${ca}}
users:
- name: ${user}
  user: {token: "${token}"}
contexts:
- name: weft-test
  context: {cluster: weft-test, user: ${user}}
current-context: weft-test
`;
}

function readyz(server: string, dir: string): Promise<boolean> {
  return new Promise((resolveReady) => {
    const req = request(`${server}/readyz`, {
      ca: readFileSync(join(dir, "ca.crt")),
      cert: readFileSync(join(dir, "admin.crt")),
      key: readFileSync(join(dir, "admin.key")),
      timeout: 2000,
    });
    req.on("response", (res) => {
      res.resume();
      resolveReady(res.statusCode === 200);
    });
    req.on("error", () => resolveReady(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

export async function kubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  const child = execFileP(tool("kubectl"), ["--kubeconfig", kubeconfig, ...args], {
    maxBuffer: 64 * 1024 * 1024,
  });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  const { stdout } = await child;
  return stdout;
}

/** Applies crds/ and waits until every weft.dev CRD is Established. */
export async function applyCrds(kubeconfig: string): Promise<void> {
  const crdDir = join(repoRoot, "crds");
  const files = existsSync(crdDir) ? readdirSync(crdDir).filter((f) => /\.ya?ml$/.test(f)) : [];
  if (files.length === 0) return;
  await kubectl(kubeconfig, ["apply", "--server-side", "--force-conflicts", "-f", crdDir]);
  await kubectl(kubeconfig, ["wait", "--for=condition=Established", "--timeout=60s", "-f", crdDir]);
}

/**
 * Starts etcd and kube-apiserver on free 127.0.0.1 ports with RBAC and ValidatingAdmissionPolicy,
 * waits for /readyz and applies the CRDs. On failure everything started is stopped again.
 */
export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlaneState> {
  const apiserverBin = tool("kube-apiserver");
  const etcdBin = tool("etcd");
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), TMP_PREFIX));
  mkdirSync(dir, { recursive: true });
  const certs = makeCerts(dir, opts.serverSANs);
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdEndpoint = `http://127.0.0.1:${etcdClient}`;
  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, kubeconfigYaml(server, certs.caCert, certs.adminCert, certs.adminKey));

  const state: ControlPlaneState = {
    dir,
    kubeconfig,
    server,
    etcdEndpoint,
    etcdPid: 0,
    apiserverPid: 0,
    ownerPid: opts.ownerPid,
    caCert: certs.caCert,
    caKey: certs.caKey,
  };
  const save = () => writeFileSync(stateFile(dir), JSON.stringify(state, null, 2));
  save();
  try {
    state.etcdPid = startDetached(
      etcdBin,
      [
        "--name=weft-test",
        `--data-dir=${join(dir, "etcd-data")}`,
        `--listen-client-urls=${etcdEndpoint}`,
        `--advertise-client-urls=${etcdEndpoint}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=weft-test=http://127.0.0.1:${etcdPeer}`,
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
      join(dir, "etcd.log"),
    ).pid;
    save();
    state.apiserverPid = startDetached(
      apiserverBin,
      mergeFlags(
        [
          `--etcd-servers=${etcdEndpoint}`,
          "--bind-address=127.0.0.1",
          "--advertise-address=127.0.0.1",
          `--secure-port=${apiPort}`,
          `--cert-dir=${dir}`,
          `--tls-cert-file=${certs.serverCert}`,
          `--tls-private-key-file=${certs.serverKey}`,
          `--client-ca-file=${certs.caCert}`,
          "--service-account-issuer=https://kubernetes.default.svc",
          `--service-account-key-file=${certs.saPub}`,
          `--service-account-signing-key-file=${certs.saKey}`,
          "--api-audiences=https://kubernetes.default.svc",
          "--authorization-mode=RBAC",
          "--service-cluster-ip-range=10.96.0.0/24",
          "--enable-admission-plugins=ValidatingAdmissionPolicy",
          "--disable-admission-plugins=ServiceAccount",
          "--enable-priority-and-fairness=false",
          "--profiling=false",
          "--v=0",
        ],
        opts.apiserverArgs ?? [],
      ),
      join(dir, "apiserver.log"),
    ).pid;
    save();
    await waitFor(
      "kube-apiserver /readyz",
      async () => {
        if (!alive(state.apiserverPid))
          throw new Error(`kube-apiserver exited; see ${join(dir, "apiserver.log")}`);
        if (!alive(state.etcdPid)) throw new Error(`etcd exited; see ${join(dir, "etcd.log")}`);
        return (await readyz(server, dir)) ? true : undefined;
      },
      90000,
      200,
    );
    if (opts.applyCrds !== false) await applyCrds(kubeconfig);
    return state;
  } catch (err) {
    await stopControlPlane(state, opts.dir === undefined);
    throw err;
  }
}
