import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { convertResult, mergeResults, normalizePrevResult } from "./result.js";
import { CniError, type CniResult } from "./types.js";

const ours: CniResult = {
  cniVersion: "1.0.0",
  interfaces: [
    { name: "weftabc", mac: "ee:ee:ee:ee:ee:ee" },
    { name: "eth0", mac: "02:00:00:00:00:01", sandbox: "/x" },
  ],
  ips: [
    { address: "10.0.0.5/32", gateway: "169.254.1.1", interface: 1 },
    { address: "fd00::5/128", gateway: "fe80::ecee:eeff:feee:eeee", interface: 1 },
  ],
  routes: [{ dst: "0.0.0.0/0", gw: "169.254.1.1" }],
  dns: {},
};

describe("convertResult", () => {
  it("1.0.0 results carry no IP version tags", () => {
    const r = convertResult(ours, "1.0.0");
    assert.equal(r.cniVersion, "1.0.0");
    assert.ok(r.ips?.every((ip) => ip.version === undefined));
  });
  it("0.3.x and 0.4.0 results tag each IP with its family", () => {
    for (const v of ["0.3.0", "0.3.1", "0.4.0"]) {
      const r = convertResult(ours, v);
      assert.equal(r.cniVersion, v);
      assert.deepEqual(
        r.ips?.map((ip) => ip.version),
        ["4", "6"],
      );
    }
  });
});

describe("chaining", () => {
  it("normalizes an older prevResult and refuses a malformed one", () => {
    const prev = normalizePrevResult({
      cniVersion: "0.4.0",
      ips: [{ version: "4", address: "192.0.2.1/24" }],
    });
    assert.deepEqual(prev?.ips, [{ address: "192.0.2.1/24" }]);
    assert.equal(normalizePrevResult(undefined), undefined);
    assert.throws(() => normalizePrevResult("x"), CniError);
    assert.throws(() => normalizePrevResult({ ips: "no" }), CniError);
  });
  it("appends our interfaces and moves our IP indices past the previous ones", () => {
    const prev: CniResult = {
      cniVersion: "1.0.0",
      interfaces: [{ name: "lo0" }],
      ips: [{ address: "192.0.2.1/24", interface: 0 }],
      dns: { nameservers: ["192.0.2.53"] },
    };
    const m = mergeResults(prev, ours);
    assert.deepEqual(
      m.interfaces?.map((i) => i.name),
      ["lo0", "weftabc", "eth0"],
    );
    assert.deepEqual(
      m.ips?.map((ip) => ip.interface),
      [0, 2, 2],
    );
    assert.deepEqual(m.dns, { nameservers: ["192.0.2.53"] });
    assert.equal(mergeResults(undefined, ours), ours);
  });
});

describe("parseHttpResponse", () => {
  it("reads status and a content-length body, and decodes chunked bodies", async () => {
    const { parseHttpResponse } = await import("./client.js");
    const plain = Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    assert.deepEqual(parseHttpResponse(plain), { status: 200, body: "{}" });
    const chunked = Buffer.from(
      'HTTP/1.1 422 X\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n',
    );
    assert.deepEqual(parseHttpResponse(chunked), { status: 422, body: '{"a":1}' });
    assert.throws(() => parseHttpResponse(Buffer.from("HTTP/1.1 200 OK\r\n")), /truncated/);
  });
});
