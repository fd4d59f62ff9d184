import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JSONSchemaProps } from "../devenv/crdgen/schema.js";
import { crdFiles, invalidFixtures, validManifestFiles } from "../test/fixtures/manifests.js";
import { BGP_DEFAULTS } from "./bgp.js";
import { POOL_DEFAULTS } from "./ippool.js";
import { API_VERSION, GROUP, PLURALS, VERSION } from "./meta.js";

/** Static checks of crds/, examples/ and the invalid corpus; the apiserver's verdict is in test/integration/crds.test.ts. */

interface CRD {
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string; singular: string; shortNames?: string[]; categories?: string[] };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: object };
      additionalPrinterColumns?: { name: string; jsonPath: string; type: string }[];
      schema: { openAPIV3Schema: JSONSchemaProps };
    }[];
  };
}

const crds = crdFiles().map((f) => ({ path: f.path, docs: f.docs as unknown as CRD[] }));
const byKind = new Map(crds.map((c) => [c.docs[0]!.spec.names.kind, c.docs[0]!]));

function schemaOf(kind: string): JSONSchemaProps {
  const s = byKind.get(kind)?.spec.versions[0]?.schema.openAPIV3Schema;
  assert.ok(s, `no schema for ${kind}`);
  return s;
}

/** Visits every schema node with its path; `field` is true for named properties (which need a description). */
function walk(
  s: JSONSchemaProps,
  path: string,
  visit: (s: JSONSchemaProps, path: string, field: boolean) => void,
) {
  for (const [name, sub] of Object.entries(s.properties ?? {})) {
    visit(sub, `${path}.${name}`, true);
    walk(sub, `${path}.${name}`, visit);
  }
  if (s.items) {
    visit(s.items, `${path}[]`, false);
    walk(s.items, `${path}[]`, visit);
  }
  if (typeof s.additionalProperties === "object") {
    visit(s.additionalProperties, `${path}{}`, false);
    walk(s.additionalProperties, `${path}{}`, visit);
  }
}

function at(schema: JSONSchemaProps, path: string): JSONSchemaProps {
  let s: JSONSchemaProps | undefined = schema;
  for (const p of path.split(".")) s = s?.properties?.[p];
  assert.ok(s, `no ${path}`);
  return s;
}

describe("crds/", () => {
  it("holds one CRD per file, one file per kind", () => {
    for (const c of crds) assert.equal(c.docs.length, 1, c.path);
    assert.deepEqual([...byKind.keys()].sort(), Object.keys(PLURALS).sort());
  });

  for (const [kind, crd] of byKind) {
    it(`${kind}: weft.dev/v1alpha1, cluster-scoped, status subresource, short name, category weft`, () => {
      const plural = PLURALS[kind as keyof typeof PLURALS];
      assert.equal(crd.metadata.name, `${plural}.${GROUP}`);
      assert.equal(crd.spec.group, GROUP);
      assert.equal(crd.spec.scope, "Cluster");
      assert.equal(crd.spec.names.plural, plural);
      assert.equal(crd.spec.names.singular, kind.toLowerCase());
      assert.ok((crd.spec.names.shortNames ?? []).length > 0, "a short name");
      assert.deepEqual(crd.spec.names.categories, ["weft"]);
      assert.equal(crd.spec.versions.length, 1);
      const [v] = crd.spec.versions;
      assert.equal(v?.name, VERSION);
      assert.ok(v?.served && v.storage);
      assert.deepEqual(v?.subresources?.status, {});
      assert.ok(v?.schema.openAPIV3Schema.properties?.status, "a status schema");
      assert.ok(v?.additionalPrinterColumns?.some((c) => c.name === "Age"));
    });

    it(`${kind}: every field has a description`, () => {
      const missing: string[] = [];
      const schema = schemaOf(kind);
      if (!schema.description) missing.push(kind);
      walk(schema, kind, (s, path, field) => {
        if (field && path !== `${kind}.metadata` && !s.description) missing.push(path);
      });
      assert.deepEqual(missing, []);
    });

    it(`${kind}: strings, lists and maps are bounded (keeps CEL within its cost budget)`, () => {
      const unbounded: string[] = [];
      for (const part of ["spec", "status"]) {
        const s = schemaOf(kind).properties?.[part];
        if (!s) continue;
        walk(s, `${kind}.${part}`, (node, path) => {
          if (
            node.type === "string" &&
            node.maxLength === undefined &&
            !node.enum &&
            node.format !== "date-time"
          )
            unbounded.push(path);
          if (node.type === "array" && node.maxItems === undefined) unbounded.push(path);
          if (node.type === "object" && node.additionalProperties && node.maxProperties === undefined)
            unbounded.push(path);
        });
      }
      assert.deepEqual(unbounded, []);
    });

    it(`${kind}: every validation rule explains itself`, () => {
      const silent: string[] = [];
      const check = (s: JSONSchemaProps, path: string) => {
        const rules = (s["x-kubernetes-validations"] ?? []) as { rule: string; message?: string }[];
        for (const r of rules) if (!r.message || r.message.length < 10) silent.push(`${path}: ${r.rule}`);
      };
      const schema = schemaOf(kind);
      check(schema, kind);
      walk(schema, kind, check);
      assert.deepEqual(silent, []);
    });
  }

  it("IPPool defaults match POOL_DEFAULTS; blockSize has no schema default (it depends on the family)", () => {
    const spec = at(schemaOf("IPPool"), "spec");
    assert.equal(at(spec, "encapsulation").default, POOL_DEFAULTS.encapsulation);
    assert.equal(at(spec, "allocation").default, POOL_DEFAULTS.allocation);
    assert.equal(at(spec, "strictAffinity").default, POOL_DEFAULTS.strictAffinity);
    assert.equal(at(spec, "vxlan.vni").default, POOL_DEFAULTS.vni);
    assert.equal(at(spec, "vxlan.port").default, POOL_DEFAULTS.vxlanPort);
    assert.equal(at(spec, "blockSize").default, undefined);
    assert.match(
      at(spec, "blockSize").description ?? "",
      new RegExp(`${POOL_DEFAULTS.blockSizeV4}.*${POOL_DEFAULTS.blockSizeV6}`),
    );
  });

  it("BGPConfiguration defaults match BGP_DEFAULTS", () => {
    const spec = at(schemaOf("BGPConfiguration"), "spec");
    assert.equal(at(spec, "asNumber").default, BGP_DEFAULTS.asNumber);
    assert.equal(at(spec, "nodeToNodeMesh").default, BGP_DEFAULTS.nodeToNodeMesh);
    assert.equal(at(spec, "listenPort").default, BGP_DEFAULTS.listenPort);
  });

  it("kubectl get ippools shows CIDR, block size, encapsulation, used/free, Ready and age", () => {
    const cols = byKind.get("IPPool")?.spec.versions[0]?.additionalPrinterColumns ?? [];
    const shown = cols.filter((c) => !("priority" in c) || !c.priority).map((c) => `${c.name}=${c.jsonPath}`);
    assert.deepEqual(shown, [
      "CIDR=.spec.cidr",
      "BlockSize=.status.blockSize",
      "Encapsulation=.spec.encapsulation",
      "Used=.status.addresses.used",
      "Free=.status.addresses.free",
      'Ready=.status.conditions[?(@.type=="Ready")].status',
      "Age=.metadata.creationTimestamp",
    ]);
  });
});

describe("examples/ and test/fixtures/valid/", () => {
  const files = validManifestFiles();

  it("has the promised examples", () => {
    const specs = files
      .filter((f) => f.path.startsWith("examples/"))
      .flatMap((f) => f.docs)
      .filter((d) => d.apiVersion === API_VERSION)
      .map((d) => ({ kind: d.kind, spec: (d as { spec?: Record<string, unknown> }).spec ?? {} }));
    const pools = specs.filter((s) => s.kind === "IPPool").map((s) => s.spec);
    assert.ok(
      pools.some((p) => p.encapsulation === "VXLAN" && !String(p.cidr).includes(":")),
      "VXLAN IPv4 pool",
    );
    assert.ok(
      pools.some((p) => p.encapsulation === "HostGW"),
      "host-gw pool",
    );
    assert.ok(
      pools.some((p) => String(p.cidr).includes(":")),
      "IPv6 pool",
    );
    assert.ok(
      pools.some((p) => p.allocation === "NodeSubnet" && p.blockSize === 24),
      "NodeSubnet /24 pool",
    );
    assert.ok(
      specs.some((s) => s.kind === "BGPConfiguration"),
      "BGPConfiguration",
    );
    const peers = specs.filter((s) => s.kind === "BGPPeer").map((s) => s.spec);
    assert.ok(
      peers.some((p) => p.peerIP && p.password),
      "external peer with a password",
    );
    assert.ok(
      peers.some((p) => p.peerSelector),
      "peerSelector peer",
    );
  });

  it("holds only well-formed Kubernetes objects", () => {
    for (const f of files) {
      assert.ok(f.docs.length > 0, f.path);
      for (const d of f.docs) {
        assert.ok(
          d.apiVersion && d.kind && d.metadata?.name,
          `${f.path}: apiVersion, kind and metadata.name`,
        );
        if (d.apiVersion.startsWith(`${GROUP}/`)) {
          assert.equal(d.apiVersion, API_VERSION, f.path);
          assert.ok(d.kind in PLURALS, `${f.path}: unknown kind ${d.kind}`);
        }
      }
    }
  });
});

describe("test/fixtures/invalid/", () => {
  const fixtures = invalidFixtures();

  it("has at least 30 invalid manifests covering every kind", () => {
    assert.ok(fixtures.length >= 30, `${fixtures.length} fixtures`);
    const kinds = new Set(fixtures.map((f) => f.docs.at(-1)?.kind));
    assert.deepEqual([...kinds].sort(), Object.keys(PLURALS).sort());
  });

  it("names a field in every '# expect:' comment", () => {
    for (const f of fixtures)
      assert.match(f.expect, /^(spec|metadata|status)(\.[A-Za-z]+(\[\d+\])?)+$/, f.path);
  });

  it("keeps 'before' documents to updates of the same object", () => {
    for (const f of fixtures.filter((x) => x.docs.length > 1)) {
      const last = f.docs.at(-1)!;
      for (const d of f.docs.slice(0, -1)) {
        assert.equal(`${d.kind}/${d.metadata.name}`, `${last.kind}/${last.metadata.name}`, f.path);
      }
    }
  });
});
