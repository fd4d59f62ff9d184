import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { installCni } from "./install.js";

const dir = mkdtempSync(join(tmpdir(), `weft-cni-install-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("installCni", () => {
  it("writes the plugin (executable) and the conflist, replacing old files, leaving no temp files", () => {
    const plugin = join(dir, "weft-src");
    writeFileSync(plugin, "#!/usr/bin/env node\nconsole.log(1)\n");
    const conflist = join(dir, "10-weft.conflist");
    writeFileSync(
      conflist,
      JSON.stringify({ cniVersion: "1.0.0", name: "weft", plugins: [{ type: "weft" }, { type: "portmap" }] }),
    );
    const binDir = join(dir, "opt", "cni", "bin");
    const confDir = join(dir, "etc", "cni", "net.d");
    for (let round = 0; round < 2; round++) {
      const out = installCni({
        binDir,
        confDir,
        plugin,
        conflist,
        agentSocket: "/run/x.sock",
        nodePath: "/usr/bin/node",
      });
      assert.equal(out.plugin, join(binDir, "weft"));
      assert.equal(statSync(out.plugin).mode & 0o777, 0o755);
      assert.match(readFileSync(out.plugin, "utf8"), /^#!\/usr\/bin\/node\n/);
      const conf = JSON.parse(readFileSync(out.conflist, "utf8"));
      assert.equal(conf.plugins[0].agentSocket, "/run/x.sock");
      assert.deepEqual(readdirSync(binDir), ["weft"]);
      assert.deepEqual(readdirSync(confDir), ["10-weft.conflist"]);
    }
  });

  it("copies the native plugin byte for byte; --node applies to the Node.js plugin only", () => {
    const elf = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0x23, 0x21, 0x0a, 0xff, 0xfe]);
    const plugin = join(dir, "weft-native");
    writeFileSync(plugin, elf);
    const conflist = join(dir, "native.conflist");
    writeFileSync(
      conflist,
      JSON.stringify({ cniVersion: "1.0.0", name: "weft", plugins: [{ type: "weft" }] }),
    );
    const out = installCni({
      binDir: join(dir, "native-bin"),
      confDir: join(dir, "native-conf"),
      plugin,
      conflist,
      nodePath: "/usr/bin/node",
    });
    assert.ok(readFileSync(out.plugin).equals(elf));
    assert.equal(statSync(out.plugin).mode & 0o777, 0o755);
  });

  it("refuses a conflist without the weft plugin", () => {
    const conflist = join(dir, "other.conflist");
    writeFileSync(
      conflist,
      JSON.stringify({ cniVersion: "1.0.0", name: "x", plugins: [{ type: "bridge" }] }),
    );
    assert.throws(
      () => installCni({ binDir: join(dir, "b"), confDir: join(dir, "c"), plugin: conflist, conflist }),
      /no plugin of type "weft"/,
    );
  });
});
