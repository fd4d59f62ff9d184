/**
 * The native plugin (cni/native), the real binary run as a runtime runs it, against a stand-in
 * agent on a unix socket that answers whatever a test needs (silence, early close, huge or chunked
 * answers). Wherever the plugin decides without the agent (VERSION, a bad configuration or
 * environment, an agent that is missing, silent or closes early), it must print byte for byte what
 * the Node.js plugin prints, and this is checked by running both.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { percentDecode } from "../agent/cni/server.js";
import { nativeCniPlugin } from "../devenv/tools.js";
import { bundlePlugin } from "./bundler.js";
import { netconf, podEnv } from "./plugin-support.js";

const dir = mkdtempSync(join(tmpdir(), `weft-cni-native-${process.pid}-`));
const socket = join(dir, "agent.sock");
const missing = join(dir, "missing.sock");
let native = "";
let nodePlugin = "";

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a plugin with exactly this environment and stdin; never blocks this process's event loop. */
function run(argv: string[], env: Record<string, string>, stdin: string | Buffer): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (status) =>
      resolve({
        status,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
    child.stdin.on("error", () => undefined);
    child.stdin.end(stdin);
  });
}

const runNative = (env: Record<string, string>, stdin: string | Buffer) => run([native], env, stdin);
const runNode = (env: Record<string, string>, stdin: string | Buffer) =>
  run([process.execPath, nodePlugin], env, stdin);

const conf = (over: Record<string, unknown> = {}) => netconf(socket, over);

/** The plugin failed the way CNI says: exit status 1 and a CNI error object on stdout. */
function assertCniError(r: Run, code: number, msg: string, details: string): void {
  assert.equal(r.status, 1, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { cniVersion: "1.0.0", code, msg, details });
}

/** One request as the stand-in agent received it. */
interface Received {
  head: string;
  headers: Map<string, string>;
  body: Buffer;
}

/** What the stand-in agent does with a complete request: answer, stay silent, close... */
let onRequest: (req: Received, sock: Socket) => void = () => undefined;
const received: Received[] = [];
let server: Server;

function answer(sock: Socket, status: number, body: string | Buffer): void {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  sock.end(
    Buffer.concat([
      Buffer.from(
        `HTTP/1.1 ${status} X\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n`,
      ),
      b,
    ]),
  );
}

before(async () => {
  native = nativeCniPlugin();
  nodePlugin = await bundlePlugin(join(dir, "bin"));
  server = createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on("error", () => undefined);
    sock.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
      const headers = new Map(
        lines
          .slice(1)
          .map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
      );
      const length = Number(headers.get("content-length") ?? 0);
      if (buf.length < end + 4 + length) return;
      const req = { head: lines[0]!, headers, body: buf.subarray(end + 4, end + 4 + length) };
      received.push(req);
      sock.removeAllListeners("data");
      onRequest(req, sock);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
});

after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the native plugin decides as the Node.js plugin wherever the agent is not asked", () => {
  const gone = (over: Record<string, unknown> = {}) => conf({ agentSocket: missing, ...over });
  const cases: Array<[string, Record<string, string>, string]> = [
    ["VERSION without stdin", { CNI_COMMAND: "VERSION" }, ""],
    ["VERSION names the version asked for", { CNI_COMMAND: "VERSION" }, '{"cniVersion":"0.3.1"}'],
    ["VERSION of a version nobody speaks", { CNI_COMMAND: "VERSION" }, '{"cniVersion":"9.9.9"}'],
    ["VERSION with undecodable stdin", { CNI_COMMAND: "VERSION" }, "{ nope"],
    ["no CNI_COMMAND", {}, gone()],
    ["an unknown CNI_COMMAND", { CNI_COMMAND: "ATTACH" }, gone()],
    ["stdin that is not JSON", podEnv(), "{ this is not json"],
    ["stdin cut short", podEnv(), '{"cniVersion":"1.0.0","name":"weft'],
    ["a bad escape", podEnv(), '{"cniVersion":"1.0.0","name":"w\\q"}'],
    ["a bad token in a long configuration", podEnv(), gone().replace('"type":"weft"', '"type":weft')],
    ["JSON after the object", podEnv(), `${gone()} {}`],
    ["empty stdin", podEnv(), ""],
    ["a JSON array", podEnv(), "[1,2]"],
    ["no cniVersion", podEnv(), JSON.stringify({ name: "weft", type: "weft" })],
    ["an unsupported version, as a number", podEnv(), gone({ cniVersion: 1.0 })],
    ["an unsupported version, as an object", podEnv(), gone({ cniVersion: { v: [1e21, 1e-7, "\t"] } })],
    ["an unsupported version string", podEnv(), gone({ cniVersion: "0.9.9" })],
    ["no name", podEnv(), gone({ name: "" })],
    ["no type", podEnv(), gone({ type: 7 })],
    ["an empty agentSocket", podEnv(), gone({ agentSocket: "" })],
    ["timeoutMs zero", podEnv(), gone({ timeoutMs: 0 })],
    ["a fractional mtu", podEnv(), gone({ mtu: 1500.5 })],
    ["an mtu below 68", podEnv(), gone({ mtu: 67 })],
    ["an unknown family", podEnv(), gone({ families: ["ipv4", "ipx"] })],
    ["no families", podEnv(), gone({ families: [] })],
    ["CHECK on 0.3.1", podEnv({ CNI_COMMAND: "CHECK" }), gone({ cniVersion: "0.3.1" })],
    ["GC on 1.0.0", podEnv({ CNI_COMMAND: "GC" }), gone()],
    ["no container id", podEnv({ CNI_CONTAINERID: "" }), gone()],
    ["a container id with a slash", podEnv({ CNI_CONTAINERID: "a/b" }), gone()],
    ["an interface name of 16 characters", podEnv({ CNI_IFNAME: "eth0123456789012" }), gone()],
    ["an interface name with a non-breaking space", podEnv({ CNI_IFNAME: "eth\u00a00" }), gone()],
    ["an interface name '..'", podEnv({ CNI_IFNAME: ".." }), gone()],
    ["ADD without a netns", podEnv({ CNI_NETNS: "" }), gone()],
    ["a malformed CNI_ARGS pair", podEnv({ CNI_ARGS: "IgnoreUnknown=1;=x" }), gone()],
    ["a prevResult that is a list", podEnv(), gone({ prevResult: [] })],
    ["a prevResult whose ips is not a list", podEnv(), gone({ prevResult: { ips: {} } })],
    ["the agent's socket is missing", podEnv(), gone()],
    ["the agent's socket is missing, 0.4.0", podEnv({ CNI_COMMAND: "DEL" }), gone({ cniVersion: "0.4.0" })],
    ["the agent's socket is a plain file", podEnv(), conf({ agentSocket: join(dir, "plain-file") })],
    ["STATUS with the agent missing", podEnv({ CNI_COMMAND: "STATUS" }), gone({ cniVersion: "1.1.0" })],
  ];

  it("prints the same bytes with the same exit status for every case", async () => {
    writeFileSync(join(dir, "plain-file"), "");
    // four cases at a time: each starts node once
    for (let i = 0; i < cases.length; i += 4) {
      await Promise.all(
        cases.slice(i, i + 4).map(async ([what, env, stdin]) => {
          const [a, b] = await Promise.all([runNative(env, stdin), runNode(env, stdin)]);
          assert.equal(a.stdout, b.stdout, `${what}: stdout`);
          assert.equal(a.status, b.status, `${what}: exit status`);
          assert.equal(a.stderr, "", `${what}: nothing on stderr`);
        }),
      );
    }
  });

  it("prints the same bytes for configurations broken at random (property: 40 cases)", async () => {
    const bases = [
      gone({ mtu: 1500, families: ["ipv4"], prevResult: { ips: [], interfaces: [] }, timeoutMs: 50 }),
      gone({ cniVersion: "0.4.0", x: [1, 2, { a: null }] }),
      gone({ cniVersion: "1.1.0", "cni.dev/valid-attachments": [{ containerID: "a", ifname: "eth0" }] }),
    ];
    const junk = [
      '"',
      "{",
      "}",
      "[",
      "]",
      ",",
      ":",
      "\\",
      "u",
      "0",
      "-",
      ".",
      "e",
      " ",
      "é",
      "😀",
      "x",
      "null",
    ];
    junk.push("1e999", '"\\ud800"', "\n", "\u0001", '"0.3.1"', '""', "[]", "68", "67.5", '"ipv6"');
    const edit = fc.record({
      at: fc.nat(),
      op: fc.constantFrom("insert", "delete", "replace"),
      text: fc.constantFrom(...junk),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...bases),
        fc.array(edit, { minLength: 1, maxLength: 3 }),
        fc.constantFrom("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"),
        fc.constantFrom("c1", "", "a/b"),
        fc.constantFrom("eth0", "", "a b"),
        fc.constantFrom("", "a=b", "a=b;=c"),
        async (base, edits, command, id, ifname, args) => {
          let stdin = base;
          for (const e of edits) {
            const at = e.at % (stdin.length + 1);
            const cut = e.op === "insert" ? 0 : e.op === "delete" ? 1 + (e.at % 4) : 1;
            stdin = stdin.slice(0, at) + (e.op === "delete" ? "" : e.text) + stdin.slice(at + cut);
          }
          const env = podEnv({
            CNI_COMMAND: command,
            CNI_CONTAINERID: id,
            CNI_IFNAME: ifname,
            CNI_ARGS: args,
          });
          const [a, b] = await Promise.all([runNative(env, stdin), runNode(env, stdin)]);
          assert.equal(a.stdout, b.stdout, `stdin ${JSON.stringify(stdin)}`);
          assert.equal(a.status, b.status);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("answers VERSION without an agent, and names the codes the spec gives", async () => {
    const v = await runNative({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"0.4.0"}');
    assert.equal(v.status, 0);
    assert.deepEqual(JSON.parse(v.stdout), {
      cniVersion: "0.4.0",
      supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
    const codeOf = async (env: Record<string, string>, stdin: string) =>
      JSON.parse((await runNative(env, stdin)).stdout).code;
    assert.equal(await codeOf(podEnv(), "{ x"), 6);
    assert.equal(await codeOf(podEnv(), gone({ cniVersion: "0.9.9" })), 1);
    assert.equal(await codeOf(podEnv(), gone({ mtu: 1 })), 7);
    assert.equal(await codeOf(podEnv({ CNI_IFNAME: "a:b" }), gone()), 4);
    const long = `/tmp/${"x".repeat(120)}.sock`;
    assert.equal(await codeOf(podEnv(), gone({ agentSocket: long })), 11, "as the Node.js plugin");
    const down = JSON.parse((await runNative(podEnv(), gone())).stdout);
    assert.deepEqual(down, {
      cniVersion: "1.0.0",
      code: 11,
      msg: `cannot reach the weft agent at ${missing}`,
      details: `ENOENT connect ENOENT ${missing}`,
    });
  });
});

describe("the native plugin and the agent", () => {
  it("forwards the invocation to POST /v1/cni/exec: the environment percent-encoded, stdin byte for byte", async () => {
    onRequest = (_req, sock) => answer(sock, 200, '{"cniVersion":"1.0.0","ips":[]}\n');
    const env = podEnv({
      CNI_NETNS: "/var/run/netns/with space%",
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=café;K8S_POD_NAME=p\u00e9\t1",
    });
    const stdin = conf({ note: "ünïcödé \u2028 and a long tail".repeat(50) });
    const r = await runNative(env, stdin);
    assert.equal(r.status, 0, r.stdout);
    assert.equal(r.stdout, '{"cniVersion":"1.0.0","ips":[]}\n');
    const req = received.at(-1)!;
    assert.equal(req.head, "POST /v1/cni/exec HTTP/1.1");
    assert.equal(req.headers.get("cni-env-encoding"), "percent");
    const sent = {
      CNI_COMMAND: "cni-command",
      CNI_CONTAINERID: "cni-containerid",
      CNI_NETNS: "cni-netns",
      CNI_IFNAME: "cni-ifname",
      CNI_ARGS: "cni-args",
      CNI_PATH: "cni-path",
    } as const;
    for (const [name, header] of Object.entries(sent)) {
      const value = req.headers.get(header) ?? "";
      assert.match(value, /^[\x21-\x7e]*$/, `${header} is plain ASCII on the wire`);
      assert.equal(percentDecode(value), env[name], `${name} arrives unchanged`);
    }
    assert.ok(req.body.equals(Buffer.from(stdin)), "stdin is the body, byte for byte");
  });

  it("prints the agent's 422 answer with exit status 1, and says so when the agent answers another status", async () => {
    const error = '{"cniVersion":"1.0.0","code":3,"msg":"no such pod"}\n';
    onRequest = (_req, sock) => answer(sock, 422, error);
    const r = await runNative(podEnv({ CNI_COMMAND: "CHECK" }), conf());
    assert.deepEqual([r.status, r.stdout], [1, error]);
    onRequest = (_req, sock) => answer(sock, 500, "boom");
    assertCniError(await runNative(podEnv(), conf()), 999, "the weft agent answered HTTP 500", "boom");
  });

  it("prints a large answer whole: 8 MiB with Content-Length, 3 MiB chunked", async () => {
    const big = Buffer.alloc(8 << 20, "a");
    onRequest = (_req, sock) => answer(sock, 200, big);
    const r = await runNative(podEnv(), conf());
    assert.equal(r.status, 0);
    assert.equal(r.stdout.length, big.length);
    assert.ok(Buffer.from(r.stdout).equals(big));

    const parts = [Buffer.alloc(1 << 20, "x"), Buffer.alloc(2 << 20, "y"), Buffer.from("\n")];
    onRequest = (_req, sock) => {
      sock.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      for (const p of parts)
        sock.write(Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from("\r\n")]));
      sock.end("0\r\n\r\n");
    };
    const chunked = await runNative(podEnv(), conf());
    assert.equal(chunked.status, 0);
    assert.ok(Buffer.from(chunked.stdout).equals(Buffer.concat(parts)));
  });

  it("sends a large configuration whole (2 MiB of GC attachments)", async () => {
    onRequest = (_req, sock) => answer(sock, 200, "");
    const attachments = Array.from({ length: 30_000 }, (_, i) => ({
      containerID: `c${i}`.padEnd(64, "0"),
      ifname: "eth0",
    }));
    const stdin = conf({ cniVersion: "1.1.0", "cni.dev/valid-attachments": attachments });
    assert.ok(stdin.length > 2 << 20);
    const r = await runNative({ CNI_COMMAND: "GC", CNI_PATH: "/opt/cni/bin" }, stdin);
    assert.deepEqual([r.status, r.stdout], [0, ""]);
    assert.ok(received.at(-1)!.body.equals(Buffer.from(stdin)));
  });

  it("an agent that accepts and stays silent is code 11 after timeoutMs, as the Node.js plugin says", async () => {
    const silent: Socket[] = [];
    onRequest = (_req, sock) => silent.push(sock);
    try {
      const stdin = conf({ timeoutMs: 300 });
      const [a, b] = await Promise.all([runNative(podEnv(), stdin), runNode(podEnv(), stdin)]);
      assertCniError(a, 11, "the weft agent did not answer within 300 ms", socket);
      assert.equal(a.stdout, b.stdout);
    } finally {
      for (const s of silent) s.destroy();
    }
  });

  it("an agent that closes without an answer, or with half of one, is code 11", async () => {
    onRequest = (_req, sock) => sock.end();
    const [a, b] = await Promise.all([runNative(podEnv(), conf()), runNode(podEnv(), conf())]);
    assert.equal(a.status, 1);
    assert.equal(JSON.parse(a.stdout).code, 11);
    assert.equal(a.stdout, b.stdout);
    onRequest = (_req, sock) => sock.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"cniVer');
    const half = await runNative(podEnv(), conf());
    assertCniError(half, 11, "the weft agent closed the connection early", "Error: truncated HTTP response");
  });
});

describe("percentDecode (the agent's half of CNI-Env-Encoding)", () => {
  it("turns %XX into bytes read as UTF-8 and leaves the rest", () => {
    const cases: [encoded: string, decoded: string][] = [
      ["caf%C3%A9%20x%25", "café x%"],
      ["plain", "plain"],
      ["100%", "100%"],
      ["%zz%4", "%zz%4"],
      ["%FF", "\ufffd"],
    ];
    for (const [encoded, decoded] of cases) assert.equal(percentDecode(encoded), decoded, encoded);
  });
});
