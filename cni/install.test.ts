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
