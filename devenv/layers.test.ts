import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { checkImport, layerViolations, packageOf } from "./layers.js";
import { repoRoot } from "./tools.js";

describe("layers", () => {
  test("no import in the tree breaks the direction of the layers or enters a package past its index", () => {
    const found = layerViolations(repoRoot).map((v) => `${v.file}: ${v.spec} — ${v.reason}`);
    assert.deepEqual(found, []);
  });

  test("the package of a path is the deepest layer that holds it", () => {
    assert.equal(packageOf("ipam/block.ts"), "ipam");
    assert.equal(packageOf("ipam/client/assigner.ts"), "ipam/client");
    assert.equal(packageOf("agent/dataplane/kernel.ts"), "agent");
    assert.equal(packageOf("README.md"), undefined);
  });

  test("upward, sideways and past-the-index imports are named; downward imports through an index pass", () => {
    assert.match(checkImport("api/ippool.ts", "agent/index.ts") ?? "", /api\/ may not import agent\//);
    assert.match(
      checkImport("controllers/main.ts", "agent/index.ts") ?? "",
      /controllers\/ may not import agent/,
    );
    assert.match(
      checkImport("ipam/pool.ts", "ipam/client/index.ts") ?? "",
      /ipam\/ may not import ipam\/client/,
    );
    assert.match(checkImport("agent/main.ts", "lib/log.ts") ?? "", /entered through lib\/index\.ts/);
    assert.match(checkImport("agent/main.ts", "bgp/render-support.ts") ?? "", /imports the test file/);
    assert.equal(checkImport("agent/main.ts", "lib/index.ts"), undefined);
    assert.equal(checkImport("agent/dataplane/kernel.ts", "agent/netlink-ish.ts"), undefined);
    assert.equal(checkImport("ipam/block.test.ts", "devenv/tools.ts"), undefined, "tests may reach anywhere");
  });

  test("an upward import added to a source file fails the tree check", () => {
    const root = mkdtempSync(join(tmpdir(), "weft-layers-"));
    try {
      const put = (path: string, text: string) => {
        mkdirSync(dirname(join(root, path)), { recursive: true });
        writeFileSync(join(root, path), text);
      };
      put("api/index.ts", 'export * from "./meta.js";\n');
      put("api/meta.ts", 'import { x } from "../agent/index.js";\nexport const y = x;\n');
      put("agent/index.ts", "export const x = 1;\n");
      const found = layerViolations(root);
      assert.equal(found.length, 1);
      assert.equal(found[0]?.file, "api/meta.ts");
      assert.match(found[0]?.reason ?? "", /api\/ may not import agent\//);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
