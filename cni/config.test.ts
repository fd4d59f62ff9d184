import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareVersions, parseCniArgs, parseInvocation } from "./config.js";
import { CniError, ErrorCode } from "./types.js";

const env = (over: Record<string, string | undefined> = {}) => ({
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "abc123",
  CNI_NETNS: "/var/run/netns/pod",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
  ...over,
});
const conf = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: "1.0.0", name: "weft", type: "weft", ...over });

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CniError, `expected a CniError, got ${String(err)}`);
    return err.code;
  }
  assert.fail("expected an error");
}

describe("parseInvocation", () => {
  it("reads an ADD with its environment and CNI_ARGS", () => {
    const inv = parseInvocation(
      env({ CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p" }),
      conf(),
    );
    assert.equal(inv.command, "ADD");
    assert.ok("request" in inv);
    assert.equal(inv.request.containerId, "abc123");
    assert.equal(inv.request.netns, "/var/run/netns/pod");
    assert.equal(inv.request.ifname, "eth0");
    assert.deepEqual(inv.request.args, { IgnoreUnknown: "1", K8S_POD_NAMESPACE: "ns", K8S_POD_NAME: "p" });
    assert.equal(inv.request.config.name, "weft");
  });

  it("accepts every supported configuration version, 0.4.0 included", () => {
    for (const v of ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]) {
      assert.equal(parseInvocation(env(), conf({ cniVersion: v })).command, "ADD");
    }
  });

  it("refuses unknown versions with code 1 and lists the supported ones", () => {
    for (const v of ["0.2.0", "2.0.0", "9.9.9", 1]) {
      assert.equal(
        code(() => parseInvocation(env(), conf({ cniVersion: v }))),
        ErrorCode.IncompatibleVersion,
      );
    }
    try {
      parseInvocation(env(), conf({ cniVersion: "9.9.9" }));
    } catch (err) {
      assert.match((err as CniError).details ?? "", /1\.0\.0/);
    }
  });

  it("refuses CHECK before 0.4.0 and STATUS/GC before 1.1.0", () => {
    assert.equal(
      code(() => parseInvocation(env({ CNI_COMMAND: "CHECK" }), conf({ cniVersion: "0.3.1" }))),
      ErrorCode.IncompatibleVersion,
    );
    assert.equal(
      code(() => parseInvocation(env({ CNI_COMMAND: "GC" }), conf())),
      ErrorCode.IncompatibleVersion,
    );
    assert.equal(
      parseInvocation(env({ CNI_COMMAND: "CHECK" }), conf({ cniVersion: "0.4.0" })).command,
      "CHECK",
    );
    assert.equal(
      parseInvocation(env({ CNI_COMMAND: "STATUS" }), conf({ cniVersion: "1.1.0" })).command,
      "STATUS",
    );
  });

  it("undecodable stdin is code 6", () => {
    for (const bad of ["{bad", "", "[]", "null", "42", '"x"']) {
      assert.equal(
        code(() => parseInvocation(env(), bad)),
        ErrorCode.DecodingFailure,
        bad,
      );
    }
  });

  it("missing or wrong configuration fields are code 7", () => {
    const stdins = [
      JSON.stringify({ name: "n", type: "weft" }),
      conf({ name: "" }),
      conf({ type: undefined }),
      conf({ agentSocket: 5 }),
      conf({ families: ["ipx"] }),
      conf({ mtu: 10 }),
    ];
    for (const stdin of stdins) {
      assert.equal(
        code(() => parseInvocation(env(), stdin)),
        ErrorCode.InvalidNetworkConfig,
        stdin,
      );
    }
  });

  it("a bad environment is code 4", () => {
    const overrides: Record<string, string | undefined>[] = [
      { CNI_COMMAND: undefined },
      { CNI_COMMAND: "FROB" },
      { CNI_CONTAINERID: "" },
      { CNI_CONTAINERID: "-bad id" },
      { CNI_IFNAME: undefined },
      { CNI_IFNAME: "a-name-longer-than-15" },
      { CNI_IFNAME: "../x" },
      { CNI_NETNS: undefined },
      { CNI_ARGS: "novalue" },
    ];
    for (const over of overrides) {
      assert.equal(
        code(() => parseInvocation(env(over), conf())),
        ErrorCode.InvalidEnvironment,
        JSON.stringify(over),
      );
    }
  });

  it("DEL needs no netns; CHECK does", () => {
    const del = parseInvocation(env({ CNI_COMMAND: "DEL", CNI_NETNS: undefined }), conf());
    assert.ok("request" in del);
    assert.equal(del.request.netns, "");
    assert.equal(
      code(() => parseInvocation(env({ CNI_COMMAND: "CHECK", CNI_NETNS: undefined }), conf())),
      4,
    );
  });

  it("VERSION needs no configuration and echoes the version asked for", () => {
    assert.deepEqual(parseInvocation({ CNI_COMMAND: "VERSION" }, ""), {
      command: "VERSION",
      cniVersion: "1.1.0",
    });
    assert.deepEqual(parseInvocation({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"0.4.0"}'), {
      command: "VERSION",
      cniVersion: "0.4.0",
    });
  });
});

describe("helpers", () => {
  it("compareVersions is numeric", () => {
    assert.ok(compareVersions("0.10.0", "0.4.0") > 0);
    assert.equal(compareVersions("1.0.0", "1.0.0"), 0);
    assert.ok(compareVersions("0.3.1", "0.4.0") < 0);
  });
  it("parseCniArgs keeps '=' inside values and ignores empty pairs", () => {
    assert.deepEqual(parseCniArgs("A=b=c;;D="), { A: "b=c", D: "" });
    assert.deepEqual(parseCniArgs(undefined), {});
  });
});
