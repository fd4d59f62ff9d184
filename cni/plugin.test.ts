import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { bundlePlugin } from "./bundler.js";
import { runPlugin } from "./plugin.js";
import { netconf, podEnv } from "./plugin-support.js";
import type { AgentRequest, AgentResponse } from "./types.js";

const dir = mkdtempSync(join(tmpdir(), `weft-cni-unit-${process.pid}-`));
const socket = join(dir, "agent.sock");
const seen: AgentRequest[] = [];
let answer: (req: AgentRequest) => AgentResponse = () => ({});
let server: Server;
let weft = "";

const conf = (over: Record<string, unknown> = {}) => netconf(socket, over);

const agentResult = {
  cniVersion: "1.0.0",
  interfaces: [
    { name: "weftx", mac: "ee:ee:ee:ee:ee:ee" },
    { name: "eth0", sandbox: "/var/run/netns/p1" },
  ],
  ips: [{ address: "10.0.0.9/32", gateway: "169.254.1.1", interface: 1 }],
  routes: [{ dst: "0.0.0.0/0", gw: "169.254.1.1" }],
  dns: {},
};

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as AgentRequest;
      seen.push(body);
      res.end(JSON.stringify(answer(body)));
    });
  });
  await new Promise<void>((r) => server.listen(socket, r));
  weft = await bundlePlugin(join(dir, "bin"));
});
after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("runPlugin against an agent", () => {
  it("forwards ADD with env, args and config, and prints the result", async () => {
    answer = () => ({ result: agentResult });
    const out = await runPlugin(podEnv({ CNI_ARGS: "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p" }), conf());
    assert.equal(out.exitCode, 0);
    const last = seen.at(-1)!;
    assert.equal(last.command, "ADD");
    assert.equal(last.args.K8S_POD_NAME, "p");
    assert.equal(last.config.agentSocket, socket);
    assert.deepEqual(JSON.parse(out.stdout), agentResult);
  });

  it("answers in the configuration's version (0.4.0 tags IPs)", async () => {
    answer = () => ({ result: agentResult });
    const out = await runPlugin(podEnv(), conf({ cniVersion: "0.4.0" }));
    const r = JSON.parse(out.stdout);
    assert.equal(r.cniVersion, "0.4.0");
    assert.equal(r.ips[0].version, "4");
  });

  it("merges a previous plugin's result", async () => {
    answer = () => ({ result: agentResult });
    const prevResult = {
      cniVersion: "1.0.0",
      interfaces: [{ name: "dummy0" }],
      ips: [{ address: "192.0.2.1/24" }],
    };
    const r = JSON.parse((await runPlugin(podEnv(), conf({ prevResult }))).stdout);
    assert.deepEqual(
      r.interfaces.map((i: { name: string }) => i.name),
      ["dummy0", "weftx", "eth0"],
    );
    assert.equal(r.ips[1].interface, 2);
  });

  it("DEL and CHECK print nothing on success", async () => {
    answer = () => ({});
    for (const c of ["DEL", "CHECK"]) {
      const out = await runPlugin(podEnv({ CNI_COMMAND: c }), conf());
      assert.deepEqual(out, { stdout: "", exitCode: 0 });
    }
  });

  it("passes the agent's error code through as CNI error JSON", async () => {
    answer = () => ({ error: { code: 3, msg: "no addresses are assigned to c1.eth0" } });
    const out = await runPlugin(podEnv({ CNI_COMMAND: "CHECK" }), conf());
    assert.equal(out.exitCode, 1);
    assert.deepEqual(JSON.parse(out.stdout), {
      cniVersion: "1.0.0",
      code: 3,
      msg: "no addresses are assigned to c1.eth0",
    });
  });

  it("an unreachable agent is code 11, try again later", async () => {
    const out = await runPlugin(podEnv(), conf({ agentSocket: join(dir, "nobody.sock") }));
    assert.equal(out.exitCode, 1);
    const e = JSON.parse(out.stdout);
    assert.equal(e.code, 11);
    assert.match(e.msg, /nobody\.sock/);
  });

  it("an agent answering garbage is code 999, without a stack", async () => {
    answer = () => "not json" as unknown as AgentResponse;
    const out = await runPlugin(podEnv(), conf());
    const e = JSON.parse(out.stdout);
    assert.equal(e.code, 999);
    assert.doesNotMatch(out.stdout, /at .*\.js:\d+/);
  });
});

describe("the bundled executable", () => {
  const exec = (e: Record<string, string>, stdin: string) => {
    const r = spawnSync(weft, [], {
      input: stdin,
      env: { PATH: process.env.PATH ?? "", ...e },
      encoding: "utf8",
    });
    return { status: r.status, out: r.stdout, err: r.stderr };
  };

  it("VERSION lists the supported versions", () => {
    const r = exec({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"1.0.0"}');
    assert.equal(r.status, 0);
    assert.deepEqual(JSON.parse(r.out), {
      cniVersion: "1.0.0",
      supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
  });

  it("malformed stdin: code 6, non-zero exit, nothing on stderr", () => {
    const r = exec(podEnv(), "{not json");
    assert.equal(r.status, 1);
    assert.equal(JSON.parse(r.out).code, 6);
    assert.equal(r.err, "");
  });

  it("an unknown CNI version: code 1", () => {
    const r = exec(podEnv(), conf({ cniVersion: "7.0.0" }));
    assert.equal(r.status, 1);
    assert.equal(JSON.parse(r.out).code, 1);
  });

  it("agent down: code 11", () => {
    const r = exec(podEnv(), conf({ agentSocket: join(dir, "down.sock") }));
    assert.equal(r.status, 1);
    assert.equal(JSON.parse(r.out).code, 11);
  });
});
