import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { inSubnet, parseConnect, route, serve } from "./connect-proxy.js";

describe("the apiserver's CONNECT proxy", () => {
  it("accepts only CONNECT to an IPv4 address and port, never a name", () => {
    assert.deepEqual(parseConnect("CONNECT 192.0.2.11:10250 HTTP/1.1"), { host: "192.0.2.11", port: 10250 });
    assert.ok("error" in parseConnect("CONNECT node-1:10250 HTTP/1.1"));
    assert.ok("error" in parseConnect("GET / HTTP/1.1"));
    assert.ok("error" in parseConnect("CONNECT 192.0.2.11:0 HTTP/1.1"));
  });

  it("tells addresses inside a subnet from those outside", () => {
    assert.ok(inSubnet("192.0.2.11", "192.0.2.0/24"));
    assert.ok(!inSubnet("192.0.3.11", "192.0.2.0/24"));
    assert.ok(inSubnet("127.9.9.9", "127.0.0.0/8"));
    assert.ok(!inSubnet("10.0.0.1", "127.0.0.0/8"));
  });

  it("dials the underlay directly, hands pod and Service ranges on, and refuses the rest", () => {
    const via = [
      { cidr: "10.244.0.0/16", socket: "/x/pods.sock" },
      { cidr: "10.96.0.0/24", socket: "/x/pods.sock" },
    ];
    assert.deepEqual(route("192.0.2.11", ["192.0.2.0/24"], via), { direct: true });
    assert.deepEqual(route("10.244.3.7", ["192.0.2.0/24"], via), { via: "/x/pods.sock" });
    assert.deepEqual(route("10.96.0.10", ["192.0.2.0/24"], via), { via: "/x/pods.sock" });
    const refused = route("8.8.8.8", ["192.0.2.0/24"], via);
    assert.ok(
      "error" in refused &&
        /outside 192\.0\.2\.0\/24, 10\.244\.0\.0\/16, 10\.96\.0\.0\/24/.test(refused.error),
    );
  });

  const dir = mkdtempSync(join(tmpdir(), "weft-connect-"));
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Sends a CONNECT through the proxy, then `payload`; resolves with everything read back. */
  function through(sock: string, target: string, payload: string): Promise<string> {
    return new Promise((resolveRead, reject) => {
      const c = createConnection(sock);
      let got = "";
      c.on("connect", () => c.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n${payload}`));
      c.on("data", (d) => {
        got += d.toString();
        if (got.includes("pong") || got.includes("403")) c.end();
      });
      c.on("close", () => resolveRead(got));
      c.on("error", reject);
    });
  }

  it("tunnels to an allowed target and refuses one outside its subnet", async () => {
    const echo = createServer((s) => s.on("data", (d) => s.write(d.toString() === "ping" ? "pong" : "?")));
    servers.push(echo);
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", () => r()));
    const port = (echo.address() as { port: number }).port;
    const sock = join(dir, "allowed.sock");
    servers.push(await serve(sock, "127.0.0.0/8"));
    const ok = await through(sock, `127.0.0.1:${port}`, "ping");
    assert.match(ok, /^HTTP\/1\.1 200 Connection established\r\n\r\npong$/);
    const narrow = join(dir, "narrow.sock");
    servers.push(await serve(narrow, "192.0.2.0/24"));
    const refused = await through(narrow, `127.0.0.1:${port}`, "ping");
    assert.match(refused, /^HTTP\/1\.1 403 Forbidden/);
    assert.match(refused, /outside 192\.0\.2\.0\/24/);
  });

  it("hands a target in a forwarded range to the next proxy, which answers the CONNECT", async () => {
    const echo = createServer((s) => s.on("data", (d) => s.write(d.toString() === "ping" ? "pong" : "?")));
    servers.push(echo);
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", () => r()));
    const port = (echo.address() as { port: number }).port;
    const inner = join(dir, "inner.sock");
    servers.push(await serve(inner, ["127.0.0.0/8"]));
    const outer = join(dir, "outer.sock");
    servers.push(await serve(outer, ["192.0.2.0/24"], [{ cidr: "127.0.0.0/8", socket: inner }]));
    const got = await through(outer, `127.0.0.1:${port}`, "ping");
    assert.match(got, /^HTTP\/1\.1 200 Connection established\r\n\r\npong$/);
  });
});
