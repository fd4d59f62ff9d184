import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  CONTAINER_CPU_SHARES,
  engineConfig,
  engineEnv,
  makeCgroupParent,
  removeCgroupParent,
} from "./engine.js";
import { isStaticElf } from "./images.js";
import { containersMode } from "./mode.js";
import { networkMode } from "./start.js";

describe("containers mode", () => {
  it("is on unless WEFT_CONTAINERS says off, and refuses what it does not understand", () => {
    assert.equal(containersMode({}), "on");
    assert.equal(containersMode({ WEFT_CONTAINERS: "on" }), "on");
    assert.equal(containersMode({ WEFT_CONTAINERS: "OFF" }), "off");
    assert.equal(containersMode({ WEFT_CONTAINERS: "0" }), "off");
    assert.throws(
      () => containersMode({ WEFT_CONTAINERS: "maybe" }),
      /WEFT_CONTAINERS=maybe .*on \(default\) or off/,
    );
  });
});

describe("engine configuration", () => {
  const conf = engineConfig("/tmp/weft-engine-x", "/cache/images");

  it("runs runc with ulimits this machine permits, and has no CNI plugin to build a bridge with", () => {
    const c = conf["containers.conf"]!;
    assert.match(c, /^runtime = "runc"$/m);
    assert.match(c, /^default_ulimits = \["nofile=1024:1024", "nproc=1024:1024"\]$/m);
    assert.match(c, /^cni_plugin_dirs = \["\/tmp\/weft-engine-x\/no-cni-plugins"\]$/m);
    assert.match(c, /^network_config_dir = "\/tmp\/weft-engine-x\/networks"$/m);
    assert.match(c, /^dns_servers = \["127.0.0.1"\]$/m);
  });

  it("keeps its storage in its own directory and reads images from the shared store", () => {
    const s = conf["storage.conf"]!;
    assert.match(s, /^graphroot = "\/tmp\/weft-engine-x\/storage"$/m);
    assert.match(s, /^runroot = "\/tmp\/weft-engine-x\/run"$/m);
    assert.match(s, /^additionalimagestores = \["\/cache\/images"\]$/m);
    assert.match(conf["registries.conf"]!, /^unqualified-search-registries = \[\]$/m);
  });

  it("points testcontainers at the engine's socket without Ryuk", () => {
    const env = engineEnv({
      dir: "/tmp/weft-engine-x",
      socket: "/tmp/weft-engine-x/podman.sock",
      servicePid: 1,
      label: "weft-engine-x",
      podmanVersion: "4.3.1",
      images: {},
    });
    assert.equal(env.DOCKER_HOST, "unix:///tmp/weft-engine-x/podman.sock");
    assert.equal(env.TESTCONTAINERS_RYUK_DISABLED, "true");
    assert.equal(env.WEFT_ENGINE_STATE, "/tmp/weft-engine-x/state.json");
  });
});

describe("container networks", () => {
  it("are the machine's own or a named namespace under /run/netns, nothing else", () => {
    assert.equal(networkMode({ host: true }), "host");
    assert.equal(networkMode({ netns: "wx1-frr" }), "ns:/run/netns/wx1-frr");
    assert.throws(() => networkMode({ netns: "../proc/1/ns/net" }), /not a network namespace name/);
    assert.throws(() => networkMode({ netns: "a b" }), /not a network namespace name/);
  });
});

describe("images", () => {
  it("tell a static binary (runs on scratch) from one that needs a program interpreter", () => {
    const elf = (interp: boolean) => {
      // A 64-bit ELF header with one program header of type PT_INTERP (3) or PT_LOAD (1).
      const b = Buffer.alloc(64 + 56);
      b.writeUInt32BE(0x7f454c46, 0);
      b[4] = 2;
      b.writeBigUInt64LE(64n, 0x20);
      b.writeUInt16LE(56, 0x36);
      b.writeUInt16LE(1, 0x38);
      b.writeUInt32LE(interp ? 3 : 1, 64);
      const f = join(tmpdir(), `weft-elf-${process.pid}-${interp}`);
      writeFileSync(f, b);
      return f;
    };
    const [staticBin, dynamicBin] = [elf(false), elf(true)];
    try {
      assert.equal(isStaticElf(staticBin), true);
      assert.equal(isStaticElf(dynamicBin), false);
      assert.throws(() => isStaticElf("/etc/os-release"), /not a 64-bit ELF/);
    } finally {
      for (const f of [staticBin, dynamicBin]) rmSync(f, { force: true });
    }
  });
});

describe("engine cgroup parent", () => {
  it("weights the engine's containers in the cpu hierarchy and removes every level it or podman made", () => {
    const root = mkdtempSync(join(tmpdir(), "weft-cg-"));
    try {
      for (const h of ["cpu", "memory", "pids"]) mkdirSync(join(root, h));
      const parent = makeCgroupParent("weft-engine-x", root);
      assert.equal(parent, "/weft-engine-x");
      assert.equal(
        readFileSync(join(root, "cpu", "weft-engine-x", "cpu.shares"), "utf8"),
        String(CONTAINER_CPU_SHARES),
      );
      // what podman adds for a container, in several hierarchies
      mkdirSync(join(root, "memory", "weft-engine-x", "libpod-abc"), { recursive: true });
      mkdirSync(join(root, "cpu", "weft-engine-x", "libpod-abc"), { recursive: true });
      // a real cgroupfs lets rmdir remove a directory that holds only its control files
      rmSync(join(root, "cpu", "weft-engine-x", "cpu.shares"));
      removeCgroupParent(parent, root);
      for (const h of ["cpu", "memory", "pids"]) assert.deepEqual(readdirSync(join(root, h)), [], h);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
