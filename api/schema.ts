/**
 * What the CRD schemas say beyond the TypeScript types, written beside the types it belongs to.
 * crds/ is generated from these (`make generate`, devenv/crdgen): the field types and optionality
 * come from the interfaces, the descriptions from their doc comments, and everything else from a
 * TypeSchema beside each interface (bounds, patterns, defaults, CEL rules) and a KindCRD per kind
 * (printer columns, short names, rules on the whole object). Pure data; nothing reads it at runtime.
 */

/** A CEL rule the apiserver checks on every write (an entry of x-kubernetes-validations). */
export interface Validation {
  /** CEL over `self` (and `oldSelf`: a rule using it only runs on updates). */
  rule: string;
  /** What the user reads when the rule fails; it names the field. */
  message: string;
  /** Error type of the failure (default FieldValueInvalid). */
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
  /** Field the failure is reported at, relative to where the rule sits (`.blockSize`). */
  fieldPath?: string;
}

/** OpenAPI and Kubernetes schema keywords of one value, beyond its type. */
export interface SchemaKeywords {
  /** A `number` is an integer in the CRDs; the format says its width. Strings: date-time. */
  format?: "int32" | "int64" | "date-time";
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  /** An RE2 regular expression (write it with String.raw to keep backslashes as they are). */
  pattern?: string;
  maxItems?: number;
  maxProperties?: number;
  /** Filled in by the apiserver when the field is absent; a required field with a default is not required. */
  default?: unknown;
  /** x-kubernetes-list-type: how server-side apply merges the list. */
  listType?: "atomic" | "set" | "map";
  /** x-kubernetes-list-map-keys of a listType map. */
  listMapKeys?: string[];
  /** x-kubernetes-map-type. */
  mapType?: "atomic" | "granular";
  validations?: Validation[];
}

/**
 * The schema keywords of a value of type T and, nested, of its list items, map values or fields
 * (typed against T, so a renamed field fails to compile). Beside a named interface it holds for
 * every use of that interface; a field's own keywords are added to those of its type.
 */
export type TypeSchema<T> = SchemaKeywords & NestedSchema<NonNullable<T>>;

type NestedSchema<T> = T extends readonly (infer E)[]
  ? { items?: TypeSchema<E> }
  : T extends string | number | boolean
    ? unknown
    : string extends keyof T
      ? { values?: TypeSchema<T[string]> }
      : { fields?: { [K in keyof T]?: TypeSchema<T[K]> } };

/** Any TypeSchema, as the generator walks it. */
export interface SchemaNode extends SchemaKeywords {
  items?: SchemaNode;
  values?: SchemaNode;
  fields?: Record<string, SchemaNode | undefined>;
}

/** A column of `kubectl get` (additionalPrinterColumns). */
export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description?: string;
  /** 1: shown only with `-o wide`. */
  priority?: number;
}

/** What a kind's CRD says beyond its types: names, columns and rules over the whole object. */
export interface KindCRD {
  shortNames: string[];
  printerColumns: PrinterColumn[];
  /** Rules over the whole object, for those that relate metadata to the spec. */
  validations?: Validation[];
  /** The object may be created without a spec (every field of it is optional). */
  optionalSpec?: boolean;
  /**
   * Fields a list or watch may select on (`fieldSelector=spec.affinity=node-a`), as JSON paths
   * (selectableFields; Kubernetes 1.31 and later): a reader that needs a few objects of a large
   * collection asks the apiserver for those alone.
   */
  selectableFields?: string[];
}

/** What every weft.dev CRD shares. */
export const CRD_COMMON = {
  scope: "Cluster",
  /** `kubectl get weft` lists every Weft object. */
  categories: ["weft"],
  labels: { "app.kubernetes.io/part-of": "weft" },
  /** The status is written through its own subresource: writers of the spec cannot touch it. */
  statusSubresource: true,
} as const;

/** The last column of every kind. */
export const AGE_COLUMN: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
};

/**
 * A CEL rule over several lines: the lines are joined with one space (as YAML's `>-` folds them)
 * and backslashes stay as written.
 */
export function cel(strings: TemplateStringsArray, ...values: unknown[]): string {
  return String.raw({ raw: strings.raw }, ...values)
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .join(" ");
}

/** The rule that keeps a field as it was created; `hint` tells the user what to do instead. */
export function immutable(field: string, hint?: string): Validation {
  return {
    rule: "self == oldSelf",
    reason: "FieldValueForbidden",
    message: hint ? `${field} is immutable; ${hint}` : `${field} is immutable`,
  };
}

/** Patterns the API repeats (Kubernetes' own name and label syntax). */
export const PATTERNS = {
  /** A DNS subdomain: names of nodes, pools, pods, Secrets. */
  dnsSubdomain: String.raw`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`,
  /** A DNS label: namespace names. */
  dnsLabel: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
  /** A label key with its optional prefix, such as kubernetes.io/os. */
  labelKey: String.raw`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`,
  /** A label value (may be empty). */
  labelValue: "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
  /** A MAC address in lower case. */
  mac: "^([0-9a-f]{2}:){5}[0-9a-f]{2}$",
  /** A Linux interface name. */
  device: "^[A-Za-z0-9][-A-Za-z0-9_.]{0,14}$",
  /** A non-negative decimal number of any size. */
  decimal: "^[0-9]+$",
} as const;

/** Keywords of names of Kubernetes objects (nodes, pools, pods, Secrets). */
export const ObjectNameSchema: SchemaKeywords = {
  minLength: 1,
  maxLength: 253,
  pattern: PATTERNS.dnsSubdomain,
};
