import { dirname, join, resolve } from "node:path";
import ts from "typescript";

/**
 * The shape of a field as both sides can describe it: api/*.ts (through the TypeScript checker)
 * and a CRD's openAPIV3Schema. Comparing two shapes finds drift between the types and the CRDs.
 */
export type Shape =
  | { kind: "string" | "number" | "boolean" | "unknown"; detail?: string }
  | { kind: "enum"; values: string[] }
  | { kind: "array"; items: Shape }
  | { kind: "map"; values: Shape }
  | { kind: "object"; props: Record<string, { optional: boolean; defaulted?: boolean; shape: Shape }> };

/** Top-level shapes of one kind: its spec and (when it has one) its status. */
export interface KindShape {
  spec: Shape;
  status?: Shape;
}

export interface TsShapeOptions {
  /** Replacement texts by absolute file path, to check what a change of api/*.ts would do. */
  overrides?: Record<string, string>;
}

const sourceCache = new Map<string, ts.SourceFile>();

/** Reads the spec and status shapes of the given kinds from the type aliases exported by api/index.ts. */
export function tsKindShapes(
  apiDir: string,
  kinds: readonly string[],
  opts: TsShapeOptions = {},
): Record<string, KindShape> {
  const index = resolve(apiDir, "index.ts");
  const options: ts.CompilerOptions = {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    // es5 has Array and Record, all the types use; the full library only costs parse time.
    lib: ["lib.es5.d.ts"],
    noEmit: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const overrides = opts.overrides ?? {};
  const readFile = host.readFile.bind(host);
  host.readFile = (f) => overrides[resolve(f)] ?? readFile(f);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, onError, create) => {
    const text = overrides[resolve(f)];
    if (text !== undefined) return ts.createSourceFile(f, text, lang);
    // Unchanged files are parsed once per process; several shapes are read with small overrides.
    let sf = sourceCache.get(f);
    if (!sf) {
      sf = getSourceFile(f, lang, onError, create);
      if (sf) sourceCache.set(f, sf);
    }
    return sf;
  };
  const program = ts.createProgram([index], options, host);
  // Only syntax is checked: an override may well break a helper's types, the shapes are still readable.
  const errors = program
    .getSourceFiles()
    .filter((sf) => sf.fileName.startsWith(dirname(index)))
    .flatMap((sf) => program.getSyntacticDiagnostics(sf));
  if (errors.length) {
    throw new Error(
      `api/*.ts does not parse: ${ts.flattenDiagnosticMessageText(errors[0]!.messageText, "\n")}`,
    );
  }
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(index);
  const module = source && checker.getSymbolAtLocation(source);
  if (!module) throw new Error(`cannot read ${index}`);
  const exports = new Map(checker.getExportsOfModule(module).map((s) => [s.name, s]));

  const result: Record<string, KindShape> = {};
  for (const kind of kinds) {
    let sym = exports.get(kind);
    if (!sym) throw new Error(`api/index.ts exports no type ${kind}`);
    if (sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
    const objectType = checker.getDeclaredTypeOfSymbol(sym);
    const part = (name: string) => {
      const prop = checker.getPropertyOfType(objectType, name);
      if (!prop) return undefined;
      const t = checker.getNonNullableType(checker.getTypeOfSymbol(prop));
      return t.flags & ts.TypeFlags.Never ? undefined : shapeOfType(checker, t);
    };
    const spec = part("spec");
    if (!spec) throw new Error(`${kind} has no spec`);
    result[kind] = { spec, status: part("status") };
  }
  return result;
}

function shapeOfType(checker: ts.TypeChecker, type: ts.Type): Shape {
  const t = checker.getNonNullableType(type);
  if (t.flags & ts.TypeFlags.BooleanLike) return { kind: "boolean" };
  if (t.isStringLiteral()) return { kind: "enum", values: [t.value] };
  if (t.isUnion()) {
    if (t.types.every((m) => m.isStringLiteral())) {
      return { kind: "enum", values: t.types.map((m) => (m as ts.StringLiteralType).value).sort() };
    }
    return { kind: "unknown", detail: checker.typeToString(t) };
  }
  if (t.flags & ts.TypeFlags.StringLike) return { kind: "string" };
  if (t.flags & ts.TypeFlags.NumberLike) return { kind: "number" };
  if (checker.isArrayType(t)) {
    const [item] = checker.getTypeArguments(t as ts.TypeReference);
    return { kind: "array", items: item ? shapeOfType(checker, item) : { kind: "unknown" } };
  }
  if (t.flags & ts.TypeFlags.Object) {
    const props = checker.getPropertiesOfType(t);
    const index = checker.getIndexInfoOfType(t, ts.IndexKind.String);
    if (props.length === 0 && index) return { kind: "map", values: shapeOfType(checker, index.type) };
    const out: Record<string, { optional: boolean; shape: Shape }> = {};
    for (const p of props) {
      out[p.name] = {
        optional: (p.flags & ts.SymbolFlags.Optional) !== 0,
        shape: shapeOfType(checker, checker.getTypeOfSymbol(p)),
      };
    }
    return { kind: "object", props: out };
  }
  return { kind: "unknown", detail: checker.typeToString(t) };
}

/** A node of an OpenAPI v3 schema as CRDs use it. */
export interface JSONSchemaProps {
  type?: string;
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  items?: JSONSchemaProps;
  additionalProperties?: JSONSchemaProps | boolean;
  enum?: unknown[];
  [key: string]: unknown;
}

export function shapeOfSchema(s: JSONSchemaProps): Shape {
  switch (s.type) {
    case "string":
      return s.enum ? { kind: "enum", values: s.enum.map(String).sort() } : { kind: "string" };
    case "integer":
    case "number":
      return { kind: "number" };
    case "boolean":
      return { kind: "boolean" };
    case "array":
      return { kind: "array", items: s.items ? shapeOfSchema(s.items) : { kind: "unknown" } };
    case "object": {
      if (!s.properties && typeof s.additionalProperties === "object") {
        return { kind: "map", values: shapeOfSchema(s.additionalProperties) };
      }
      const required = new Set(s.required ?? []);
      const props: Record<string, { optional: boolean; defaulted?: boolean; shape: Shape }> = {};
      for (const [name, sub] of Object.entries(s.properties ?? {})) {
        props[name] = { optional: !required.has(name), shape: shapeOfSchema(sub) };
        if (sub.default !== undefined) props[name].defaulted = true;
      }
      return { kind: "object", props };
    }
    default:
      return { kind: "unknown", detail: `type ${s.type}` };
  }
}

function describe(s: Shape): string {
  if (s.kind === "enum") return `enum(${s.values.join("|")})`;
  if (s.kind === "array") return `array of ${describe(s.items)}`;
  if (s.kind === "map") return `map of ${describe(s.values)}`;
  if (s.kind === "unknown") return `unknown (${s.detail ?? "?"})`;
  return s.kind;
}

/**
 * Differences between the TypeScript shape and the CRD shape of one field, as readable lines naming
 * the path (`IPPool.spec.vxlan.vni: ...`). Empty when they agree.
 */
export function diffShapes(path: string, ts: Shape, crd: Shape): string[] {
  if (ts.kind === "unknown") return [`${path}: the TypeScript type ${describe(ts)} has no CRD equivalent`];
  if (ts.kind !== crd.kind)
    return [`${path}: TypeScript says ${describe(ts)}, the CRD says ${describe(crd)}`];
  if (ts.kind === "enum" && crd.kind === "enum") {
    return ts.values.join("|") === crd.values.join("|")
      ? []
      : [`${path}: TypeScript allows ${ts.values.join("|")}, the CRD allows ${crd.values.join("|")}`];
  }
  if (ts.kind === "array" && crd.kind === "array") return diffShapes(`${path}[]`, ts.items, crd.items);
  if (ts.kind === "map" && crd.kind === "map") return diffShapes(`${path}{}`, ts.values, crd.values);
  if (ts.kind === "object" && crd.kind === "object") {
    const out: string[] = [];
    const names = [...new Set([...Object.keys(ts.props), ...Object.keys(crd.props)])].sort();
    for (const name of names) {
      const a = ts.props[name];
      const b = crd.props[name];
      const p = `${path}.${name}`;
      if (!b) out.push(`${p}: in the TypeScript type but not in the CRD schema`);
      else if (!a) out.push(`${p}: in the CRD schema but not in the TypeScript type`);
      else {
        // A field the CRD defaults may be left out by writers yet is always there when read:
        // either spelling in TypeScript is right.
        if (a.optional !== b.optional && !(b.optional && b.defaulted)) {
          out.push(
            `${p}: ${a.optional ? "optional" : "required"} in TypeScript but ${b.optional ? "optional" : "required"} in the CRD`,
          );
        }
        out.push(...diffShapes(p, a.shape, b.shape));
      }
    }
    return out;
  }
  return [];
}

/** Absolute path of a file of api/ (for overrides). */
export function apiFile(apiDir: string, name: string): string {
  return resolve(join(apiDir, name));
}
