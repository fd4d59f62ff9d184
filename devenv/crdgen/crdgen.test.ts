import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { repoRoot } from "../tools.js";
import { buildCrds } from "./generate.js";
import { renderYaml } from "./render.js";
import type { CRDObject, JSONSchemaProps } from "./schema.js";

/** What the generator makes of api/, and what it refuses; the files themselves: test/ship/generated.test.ts. */

const IPPOOL_TS = join(repoRoot, "api", "ippool.ts");
const ippoolText = readFileSync(IPPOOL_TS, "utf8");

function edited(from: string, to: string): Record<string, string> {
  assert.ok(ippoolText.includes(from), `api/ippool.ts no longer holds ${from}`);
  return { [IPPOOL_TS]: ippoolText.replace(from, to) };
}

function schemaOf(crds: CRDObject[], kind: string): JSONSchemaProps {
  const crd = crds.find((c) => c.spec.names.kind === kind);
  assert.ok(crd, `no CRD for ${kind}`);
  return crd.spec.versions[0]!.schema.openAPIV3Schema;
}

function specOf(crds: CRDObject[], kind: string): JSONSchemaProps {
  return schemaOf(crds, kind).properties!.spec!;
}

describe("crdgen", () => {
  const crds = buildCrds();

  it("takes enum values in the order the union is written, and a field's description from its doc comment", () => {
    const spec = specOf(crds, "IPPool");
    assert.deepEqual(spec.properties?.encapsulation?.enum, ["VXLAN", "HostGW", "BGP", "IPIP"]);
    const swapped = buildCrds({
      overrides: edited(
        `export type Encapsulation = "VXLAN" | "HostGW" | "BGP" | "IPIP";`,
        `export type Encapsulation = "BGP" | "VXLAN" | "HostGW" | "IPIP";`,
      ),
    });
    assert.deepEqual(specOf(swapped, "IPPool").properties?.encapsulation?.enum, [
      "BGP",
      "VXLAN",
      "HostGW",
      "IPIP",
    ]);
    assert.equal(
      specOf(swapped, "RouteIntent").properties?.encapsulation?.enum?.[0],
      "BGP",
      "the enum follows the type wherever it is used",
    );
    assert.equal(
      spec.properties?.disabled?.description,
      "A disabled pool gives out no new blocks or addresses; existing ones stay (default false).",
    );
  });

  it("makes a field required unless it is optional in TypeScript or the apiserver defaults it", () => {
    const ri = specOf(crds, "RouteIntent");
    // routes, neighbors and fdb are required in TypeScript, defaulted to [] by the CRD
    assert.deepEqual(ri.required, ["node", "underlayIP", "encapsulation"]);
    assert.deepEqual(ri.properties?.routes?.default, []);
    const required = buildCrds({ overrides: edited("  disabled?: boolean;", "  disabled: boolean;") });
    assert.deepEqual(specOf(required, "IPPool").required, ["cidr", "disabled"]);
  });

  it("adds a new field with its doc comment and the keywords of its type", () => {
    const added = buildCrds({
      overrides: edited(
        "  disabled?: boolean;",
        "  disabled?: boolean;\n  /** Why the pool was disabled. */\n  reason?: string;\n  /** Labels. */\n  tags?: Record<string, string>;",
      ),
    });
    const props = specOf(added, "IPPool").properties!;
    assert.deepEqual(props.reason, { description: "Why the pool was disabled.", type: "string" });
    assert.deepEqual(props.tags, {
      description: "Labels.",
      type: "object",
      additionalProperties: { type: "string" },
    });
  });

  it("refuses a field without a doc comment, naming it", () => {
    assert.throws(
      () =>
        buildCrds({
          overrides: edited("  disabled?: boolean;", "  disabled?: boolean;\n  paused?: boolean;"),
        }),
      /api\/ippool\.ts: IPPoolSpec\.paused has no doc comment/,
    );
  });

  it("refuses a schema that names a field the type no longer has (a rename done halfway)", () => {
    assert.throws(
      () =>
        buildCrds({
          overrides: edited("  maxBlocksPerNode?: number;", "  maxBlocks?: number;"),
        }),
      /api\/ippool\.ts: IPPool\.spec: the schema names fields the type lacks: maxBlocksPerNode/,
    );
  });

  it("refuses a keyword that does not fit the field's type", () => {
    assert.throws(
      () => buildCrds({ overrides: edited("  blockSize?: number;", "  blockSize?: string;") }),
      /IPPoolSpec\.blockSize: format does not apply to a string|IPPoolSpec\.blockSize: minimum does not apply to a string/,
    );
  });

  it("refuses a type the CRD cannot express", () => {
    assert.throws(
      () => buildCrds({ overrides: edited("  disabled?: boolean;", "  disabled?: boolean | number;") }),
      /IPPoolSpec\.disabled: the type .* has no CRD equivalent/,
    );
  });

  it("writes YAML that parses back to the same object, long texts folded and short lists in flow style", () => {
    const value = {
      rule: `!has(self.x) || ${"self.x == 'True' && ".repeat(6)}true`,
      message: "True",
      enum: ["True", "False", "Unknown"],
      nested: { description: "a # not a comment: really" },
    };
    const text = renderYaml(["header line"], value);
    assert.ok(text.startsWith("# header line\n"));
    assert.deepEqual(parse(text), value);
    assert.match(text, /^rule: >-$/m);
    assert.match(text, /^enum: \["True", "False", Unknown\]$/m);
    assert.ok(text.split("\n").every((l) => l.length <= 100));
    assert.equal(renderYaml(["header line"], value), text, "the same object gives the same bytes");
  });
});
