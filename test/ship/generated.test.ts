import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  crdFiles,
  DEPLOY_FILE,
  differences,
  GENERATE_COMMAND,
  generatedFiles,
} from "../../devenv/crdgen/generate.js";
import { repoRoot } from "../../devenv/tools.js";

/** crds/, charts/weft/crds/ and deploy/weft.yaml are generated from api/; CI fails when they are stale. */
describe("generated files", () => {
  test(`crds/, charts/weft/crds/ and ${DEPLOY_FILE} are what \`${GENERATE_COMMAND}\` writes from api/`, async () => {
    const files = await generatedFiles();
    assert.ok(files.some((f) => f.path === DEPLOY_FILE));
    assert.deepEqual(
      differences(files),
      [],
      `the generated files are stale: run \`${GENERATE_COMMAND}\` and commit the result`,
    );
  });

  test("a field renamed in api/ without regenerating is caught, in crds/ and the chart's copy", () => {
    const file = join(repoRoot, "api", "ippool.ts");
    const text = readFileSync(file, "utf8");
    assert.match(text, /\bnodeSelector\?: LabelSelector;/);
    const renamed = crdFiles({
      overrides: { [file]: text.replace("nodeSelector?: LabelSelector;", "nodeFilter?: LabelSelector;") },
    });
    assert.deepEqual(differences(renamed), [
      "crds/weft.dev_ippools.yaml differs from what api/ generates",
      "charts/weft/crds/weft.dev_ippools.yaml differs from what api/ generates",
    ]);
    const pools = renamed.find((f) => f.path === "crds/weft.dev_ippools.yaml")?.text ?? "";
    assert.match(pools, /^ {16}nodeFilter:$/m);
    assert.doesNotMatch(pools, /nodeSelector/);
  });
});
