import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  apiFile,
  diffShapes,
  type JSONSchemaProps,
  type KindShape,
  shapeOfSchema,
  tsKindShapes,
} from "../devenv/api-shapes.js";
import { repoRoot } from "../devenv/tools.js";
import { crdFiles } from "../test/fixtures/manifests.js";
import { PLURALS } from "./meta.js";

/** Types in api/*.ts and schemas in crds/ are kept by hand; this test is what keeps them in step. */
const API_DIR = join(repoRoot, "api");
const KINDS = Object.keys(PLURALS);

function crdSchemas(): Record<string, JSONSchemaProps> {
  const out: Record<string, JSONSchemaProps> = {};
  for (const file of crdFiles()) {
    const crd = file.docs[0] as unknown as {
      spec: { names: { kind: string }; versions: { schema: { openAPIV3Schema: JSONSchemaProps } }[] };
    };
    const schema = crd.spec.versions[0]?.schema.openAPIV3Schema;
    assert.ok(schema, `${file.path} has no schema`);
    out[crd.spec.names.kind] = schema;
  }
  return out;
}

function drift(tsShapes: Record<string, KindShape>, schemas: Record<string, JSONSchemaProps>): string[] {
  const out: string[] = [];
  for (const kind of KINDS) {
    const schema = schemas[kind];
    const t = tsShapes[kind];
    if (!schema || !t) {
      out.push(`${kind}: ${schema ? "no TypeScript type" : "no CRD in crds/"}`);
      continue;
    }
    for (const part of ["spec", "status"] as const) {
      const crdPart = schema.properties?.[part];
      const tsPart = t[part];
      if (!crdPart && !tsPart) continue;
      if (!crdPart || !tsPart) {
        out.push(`${kind}.${part}: ${crdPart ? "only in the CRD" : "only in TypeScript"}`);
        continue;
      }
      out.push(...diffShapes(`${kind}.${part}`, tsPart, shapeOfSchema(crdPart)));
    }
  }
  return out;
}

describe("api/*.ts and crds/ agree", () => {
  const schemas = crdSchemas();
  const shapes = tsKindShapes(API_DIR, KINDS);

  it("has a CRD for every kind of api/meta.ts PLURALS and no other", () => {
    assert.deepEqual(Object.keys(schemas).sort(), [...KINDS].sort());
  });

  it("has the same fields, optionality, types and enum values on both sides", () => {
    assert.deepEqual(drift(shapes, schemas), []);
  });

  it("catches a renamed field in api/*.ts", () => {
    const file = apiFile(API_DIR, "ippool.ts");
    const text = readFileSync(file, "utf8");
    assert.match(text, /\bnatOutgoing\?: boolean;/);
    const renamed = tsKindShapes(API_DIR, KINDS, {
      overrides: { [file]: text.replace("natOutgoing?: boolean;", "masquerade?: boolean;") },
    });
    const found = drift(renamed, schemas);
    assert.ok(
      found.some((d) => d.startsWith("IPPool.spec.masquerade: in the TypeScript type")),
      found.join("\n"),
    );
    assert.ok(
      found.some((d) => d.startsWith("IPPool.spec.natOutgoing: in the CRD schema")),
      found.join("\n"),
    );
  });

  it("catches a field added deep inside a nested type", () => {
    const file = apiFile(API_DIR, "meta.ts");
    const text = readFileSync(file, "utf8");
    const added = tsKindShapes(API_DIR, KINDS, {
      overrides: {
        [file]: text.replace(
          "export interface SecretKeyRef {",
          "export interface SecretKeyRef {\n  optional?: boolean;",
        ),
      },
    });
    const found = drift(added, schemas);
    assert.ok(
      found.includes("BGPPeer.spec.password.optional: in the TypeScript type but not in the CRD schema"),
      found.join("\n"),
    );
    assert.ok(
      found.includes(
        "BGPConfiguration.spec.meshPassword.optional: in the TypeScript type but not in the CRD schema",
      ),
      found.join("\n"),
    );
  });

  it("catches a changed enum, a changed type and a field that became optional", () => {
    const file = apiFile(API_DIR, "ippool.ts");
    const text = readFileSync(file, "utf8");
    const changed = tsKindShapes(API_DIR, KINDS, {
      overrides: {
        [file]: text
          .replace(`"VXLAN" | "HostGW" | "BGP" | "IPIP"`, `"VXLAN" | "HostGW" | "BGP" | "IPIP" | "GRE"`)
          .replace("disabled?: boolean;", "disabled?: string;")
          .replace("  cidr: string;", "  cidr?: string;"),
      },
    });
    const found = drift(changed, schemas);
    assert.ok(
      found.some((d) =>
        d.startsWith("IPPool.spec.encapsulation: TypeScript allows BGP|GRE|HostGW|IPIP|VXLAN"),
      ),
      found.join("\n"),
    );
    assert.ok(
      found.includes("IPPool.spec.disabled: TypeScript says string, the CRD says boolean"),
      found.join("\n"),
    );
    assert.ok(
      found.includes("IPPool.spec.cidr: optional in TypeScript but required in the CRD"),
      found.join("\n"),
    );
  });

  it("catches a field added to or removed from a CRD schema", () => {
    const edited = structuredClone(schemas);
    const ippoolStatus = edited.IPPool?.properties?.status?.properties;
    assert.ok(ippoolStatus);
    ippoolStatus.lastScan = { type: "string", description: "x" };
    delete ippoolStatus.observedGeneration;
    const found = drift(shapes, edited);
    assert.ok(
      found.includes("IPPool.status.lastScan: in the CRD schema but not in the TypeScript type"),
      found.join("\n"),
    );
    assert.ok(
      found.includes("IPPool.status.observedGeneration: in the TypeScript type but not in the CRD schema"),
      found.join("\n"),
    );
  });
});
