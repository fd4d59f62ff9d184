import {
  API_VERSION,
  CRD_COMMON,
  GROUP,
  type KindCRD,
  type PrinterColumn,
  type SchemaNode,
  type Validation,
  VERSION,
} from "../../api/index.js";
import type { Field, KindType, TypeNode } from "./types.js";

/** A node of an OpenAPI v3 schema as CRDs use it. */
export interface JSONSchemaProps {
  type?: string;
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  items?: JSONSchemaProps;
  additionalProperties?: JSONSchemaProps | boolean;
  enum?: unknown[];
  default?: unknown;
  [key: string]: unknown;
}

/** A CustomResourceDefinition as the generator writes it. */
export interface CRDObject {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    scope: string;
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames: string[];
      categories: string[];
    };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
      selectableFields?: { jsonPath: string }[];
      schema: { openAPIV3Schema: JSONSchemaProps };
    }[];
  };
}

/** The schema keywords that fit each type, and where they go in the schema. */
const KEYWORDS: Record<string, readonly (keyof SchemaNode)[]> = {
  string: ["format", "minLength", "maxLength", "pattern", "default", "validations"],
  enum: ["default", "validations"],
  integer: ["format", "minimum", "maximum", "default", "validations"],
  boolean: ["default", "validations"],
  array: ["maxItems", "listType", "listMapKeys", "items", "default", "validations"],
  map: ["maxProperties", "values", "default", "validations"],
  object: ["mapType", "fields", "default", "validations"],
};

/** Builds CRDs from the kinds' types and the TypeSchemas and KindCRDs of api/. */
export class SchemaBuilder {
  private readonly used = new Set<string>();

  constructor(private readonly typeSchemas: Readonly<Record<string, SchemaNode>>) {}

  crd(kind: KindType, plural: string, meta: KindCRD): CRDObject {
    const hasStatus = kind.status !== undefined;
    return {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: `${plural}.${GROUP}`, labels: { ...CRD_COMMON.labels } },
      spec: {
        group: GROUP,
        scope: CRD_COMMON.scope,
        names: {
          kind: kind.kind,
          listKind: `${kind.kind}List`,
          plural,
          singular: kind.kind.toLowerCase(),
          shortNames: [...meta.shortNames],
          categories: [...CRD_COMMON.categories],
        },
        versions: [
          {
            name: VERSION,
            served: true,
            storage: true,
            ...(CRD_COMMON.statusSubresource && hasStatus ? { subresources: { status: {} } } : {}),
            additionalPrinterColumns: meta.printerColumns.map(column),
            ...(meta.selectableFields?.length
              ? { selectableFields: meta.selectableFields.map((jsonPath) => ({ jsonPath })) }
              : {}),
            schema: { openAPIV3Schema: this.objectSchema(kind, meta) },
          },
        ],
      },
    };
  }

  /** TypeSchemas no kind used: a misspelt interface name, or one whose type left the API. */
  unused(): string[] {
    return Object.keys(this.typeSchemas).filter((name) => !this.used.has(name));
  }

  private objectSchema(kind: KindType, meta: KindCRD): JSONSchemaProps {
    if (!kind.doc) throw new Error(`${kind.where} has no doc comment (the CRD's description)`);
    const properties: Record<string, JSONSchemaProps> = {
      apiVersion: { description: `APIVersion of this object, ${API_VERSION}.`, type: "string" },
      kind: { description: `Kind of this object, ${kind.kind}.`, type: "string" },
      metadata: { type: "object" },
      spec: this.part(kind.spec, `${kind.where}.spec`),
    };
    if (kind.status) properties.status = this.part(kind.status, `${kind.where}.status`);
    return ordered({
      description: fold(kind.doc),
      type: "object",
      required: meta.optionalSpec ? undefined : ["spec"],
      "x-kubernetes-validations": meta.validations?.map(validation),
      properties,
    });
  }

  /** The spec or the status: described by its interface's doc comment. */
  private part(t: TypeNode, where: string): JSONSchemaProps {
    const doc = typeDoc(t);
    if (!doc) throw new Error(`${where}: its interface has no doc comment (the description in the CRD)`);
    return this.node(t, undefined, doc, where);
  }

  /**
   * The schema of one value: its type, the TypeSchema of its interface (when it has one) and the
   * keywords its field adds (`rules`).
   */
  private node(
    t: TypeNode,
    rules: SchemaNode | undefined,
    description: string | undefined,
    where: string,
  ): JSONSchemaProps {
    let own: SchemaNode | undefined;
    if (t.kind === "object" && t.name && this.typeSchemas[t.name]) {
      own = this.typeSchemas[t.name];
      this.used.add(t.name);
    }
    const r = merge(own, rules);
    const allowed = KEYWORDS[t.kind]!;
    for (const key of Object.keys(r) as (keyof SchemaNode)[]) {
      if (r[key] !== undefined && !allowed.includes(key))
        throw new Error(
          `${where}: ${key} does not apply to ${t.kind === "integer" ? "a number" : `a ${t.kind}`}`,
        );
    }
    let properties: Record<string, JSONSchemaProps> | undefined;
    let required: string[] | undefined;
    if (t.kind === "object") {
      const names = new Set(t.fields.map((f) => f.name));
      const strangers = Object.keys(r.fields ?? {}).filter((n) => !names.has(n));
      if (strangers.length)
        throw new Error(`${where}: the schema names fields the type lacks: ${strangers.join(", ")}`);
      properties = {};
      required = [];
      for (const f of t.fields) {
        const p = this.node(f.type, r.fields?.[f.name], describe(f), f.where);
        properties[f.name] = p;
        // A field the apiserver defaults may be left out by writers, yet is always there when read.
        if (!f.optional && p.default === undefined) required.push(f.name);
      }
    }
    const out: JSONSchemaProps = {
      description: description && fold(description),
      type: t.kind === "enum" ? "string" : t.kind === "map" ? "object" : t.kind,
      format: r.format,
      enum: t.kind === "enum" ? t.values : undefined,
      minimum: r.minimum,
      maximum: r.maximum,
      minLength: r.minLength,
      maxLength: r.maxLength,
      pattern: r.pattern,
      default: r.default,
      maxItems: r.maxItems,
      maxProperties: r.maxProperties,
      required: required?.length ? required : undefined,
      "x-kubernetes-list-type": r.listType,
      "x-kubernetes-list-map-keys": r.listMapKeys,
      "x-kubernetes-map-type": r.mapType,
      "x-kubernetes-validations": r.validations?.map(validation),
    };
    if (t.kind === "array") out.items = this.node(t.items, r.items, typeDoc(t.items), `${where}[]`);
    if (t.kind === "map")
      out.additionalProperties = this.node(t.values, r.values, typeDoc(t.values), `${where}{}`);
    out.properties = properties;
    return ordered(out);
  }
}

function describe(f: Field): string {
  const doc = f.doc ?? typeDoc(f.type);
  if (!doc) throw new Error(`${f.where} has no doc comment (its description in the CRD)`);
  return doc;
}

function typeDoc(t: TypeNode): string | undefined {
  return t.kind === "object" ? t.doc : undefined;
}

/** A doc comment as one line per paragraph, as the hand-written CRDs folded them. */
export function fold(doc: string): string {
  return doc
    .split(/\n\s*\n/)
    .map((p) => p.replace(/\s*\n\s*/g, " ").trim())
    .join("\n\n");
}

/** The keywords of the type's own schema, then the field's: the field's win, rules add up. */
function merge(own: SchemaNode | undefined, field: SchemaNode | undefined): SchemaNode {
  if (!own) return field ?? {};
  if (!field) return own;
  const fields = own.fields || field.fields ? { ...own.fields } : undefined;
  for (const [name, f] of Object.entries(field.fields ?? {})) fields![name] = merge(own.fields?.[name], f);
  const validations =
    own.validations || field.validations
      ? [...(own.validations ?? []), ...(field.validations ?? [])]
      : undefined;
  return {
    ...own,
    ...field,
    items: own.items || field.items ? merge(own.items, field.items) : undefined,
    values: own.values || field.values ? merge(own.values, field.values) : undefined,
    fields,
    validations,
  };
}

function validation(v: Validation): Record<string, string> {
  return ordered({
    rule: v.rule,
    fieldPath: v.fieldPath,
    reason: v.reason ?? "FieldValueInvalid",
    message: v.message,
  }) as Record<string, string>;
}

function column(c: PrinterColumn): PrinterColumn {
  return ordered({
    name: c.name,
    type: c.type,
    jsonPath: c.jsonPath,
    priority: c.priority,
    description: c.description,
  }) as unknown as PrinterColumn;
}

/** The object without its undefined keys (key order stays as written: it is the YAML's order). */
function ordered<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
