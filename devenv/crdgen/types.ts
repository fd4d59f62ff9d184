import { dirname, relative, resolve } from "node:path";
import ts from "typescript";

/**
 * The TypeScript side of the CRDs: the spec and status types of each kind, read from api/ with the
 * TypeScript checker, with their doc comments (the descriptions in the CRDs).
 */
export type TypeNode =
  | { kind: "string" | "integer" | "boolean" }
  | { kind: "enum"; values: string[] }
  | { kind: "array"; items: TypeNode }
  | { kind: "map"; values: TypeNode }
  | { kind: "object"; name?: string; doc?: string; fields: Field[] };

export interface Field {
  name: string;
  optional: boolean;
  doc?: string;
  type: TypeNode;
  /** Where the field is declared, for messages: `api/ippool.ts: IPPoolSpec.cidr`. */
  where: string;
}

export interface KindType {
  kind: string;
  doc?: string;
  spec: TypeNode;
  status?: TypeNode;
  where: string;
}

export interface ReadOptions {
  /** Replacement texts by absolute file path, to see what a change of api/*.ts would generate. */
  overrides?: Record<string, string>;
}

const sourceCache = new Map<string, ts.SourceFile>();

/** Reads the given kinds (type aliases exported by api/index.ts) with their spec and status types. */
export function readKindTypes(apiDir: string, kinds: readonly string[], opts: ReadOptions = {}): KindType[] {
  const index = resolve(apiDir, "index.ts");
  const root = dirname(resolve(apiDir));
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
    if (text !== undefined) return ts.createSourceFile(f, text, lang, true);
    // Unchanged files are parsed once per process; tests read the types with small overrides.
    let sf = sourceCache.get(f);
    if (!sf) {
      sf = getSourceFile(f, lang, onError, create);
      if (sf) sourceCache.set(f, sf);
    }
    return sf;
  };
  const program = ts.createProgram([index], options, host);
  // Only syntax is checked (tsc checks the rest); an override may break a helper's types.
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
  const reader = new Reader(checker, root);

  return kinds.map((kind) => {
    let sym = exports.get(kind);
    if (!sym) throw new Error(`api/index.ts exports no type ${kind}`);
    if (sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
    const objectType = checker.getDeclaredTypeOfSymbol(sym);
    const where = reader.where(sym, kind);
    const part = (name: string) => {
      const prop = checker.getPropertyOfType(objectType, name);
      if (!prop) return undefined;
      const t = checker.getNonNullableType(checker.getTypeOfSymbol(prop));
      return t.flags & ts.TypeFlags.Never ? undefined : reader.node(t, undefined, `${where}.${name}`);
    };
    const spec = part("spec");
    if (!spec) throw new Error(`${where} has no spec`);
    return { kind, doc: reader.doc(sym), spec, status: part("status"), where };
  });
}

class Reader {
  constructor(
    private readonly checker: ts.TypeChecker,
    private readonly root: string,
  ) {}

  doc(sym: ts.Symbol): string | undefined {
    const text = ts.displayPartsToString(sym.getDocumentationComment(this.checker)).trim();
    return text === "" ? undefined : text;
  }

  where(sym: ts.Symbol, name: string): string {
    const file = sym.declarations?.[0]?.getSourceFile().fileName;
    return file ? `${relative(this.root, file)}: ${name}` : name;
  }

  /** The node of a type; `syntax` is the type as written, when known (it gives enums their order). */
  node(type: ts.Type, syntax: ts.TypeNode | undefined, where: string): TypeNode {
    const c = this.checker;
    const t = c.getNonNullableType(type);
    if (t.flags & ts.TypeFlags.BooleanLike) return { kind: "boolean" };
    if (t.isStringLiteral()) return { kind: "enum", values: [t.value] };
    if (t.isUnion()) {
      if (t.types.every((m) => m.isStringLiteral())) {
        const values = t.types.map((m) => (m as ts.StringLiteralType).value);
        return { kind: "enum", values: this.writtenOrder(syntax, values) };
      }
      throw new Error(`${where}: the type ${c.typeToString(t)} has no CRD equivalent`);
    }
    if (t.flags & ts.TypeFlags.StringLike) return { kind: "string" };
    // The API has no fractions: every number is an integer (its width is the schema's format).
    if (t.flags & ts.TypeFlags.NumberLike) return { kind: "integer" };
    if (c.isArrayType(t)) {
      const [item] = c.getTypeArguments(t as ts.TypeReference);
      if (!item) throw new Error(`${where}: an array without an item type`);
      const itemSyntax = syntax && ts.isArrayTypeNode(syntax) ? syntax.elementType : undefined;
      return { kind: "array", items: this.node(item, itemSyntax, `${where}[]`) };
    }
    if (t.flags & ts.TypeFlags.Object) {
      const props = c.getPropertiesOfType(t);
      const index = c.getIndexInfoOfType(t, ts.IndexKind.String);
      if (props.length === 0 && index)
        return { kind: "map", values: this.node(index.type, undefined, `${where}{}`) };
      const sym = t.aliasSymbol ?? t.getSymbol();
      const named =
        sym && sym.name !== ts.InternalSymbolName.Type && sym.name !== ts.InternalSymbolName.Object;
      const owner = named ? this.where(sym, sym.name) : where;
      const fields = props.map((p): Field => {
        const decl = p.valueDeclaration;
        const typeSyntax = decl && ts.isPropertySignature(decl) ? decl.type : undefined;
        const fieldWhere = `${owner}.${p.name}`;
        return {
          name: p.name,
          optional: (p.flags & ts.SymbolFlags.Optional) !== 0,
          doc: this.doc(p),
          type: this.node(c.getTypeOfSymbol(p), typeSyntax, fieldWhere),
          where: fieldWhere,
        };
      });
      return named
        ? { kind: "object", name: sym.name, doc: this.doc(sym), fields }
        : { kind: "object", fields };
    }
    throw new Error(`${where}: the type ${c.typeToString(t)} has no CRD equivalent`);
  }

  /** The values of a string-literal union in the order they are written (the checker's is arbitrary). */
  private writtenOrder(syntax: ts.TypeNode | undefined, values: string[]): string[] {
    const written = syntax ? this.literals(syntax) : [];
    const same = written.length === values.length && values.every((v) => written.includes(v));
    return same ? written : [...values].sort();
  }

  private literals(node: ts.TypeNode): string[] {
    if (ts.isUnionTypeNode(node)) return node.types.flatMap((m) => this.literals(m));
    if (ts.isParenthesizedTypeNode(node)) return this.literals(node.type);
    if (ts.isLiteralTypeNode(node) && ts.isStringLiteral(node.literal)) return [node.literal.text];
    if (ts.isTypeReferenceNode(node)) {
      let sym = this.checker.getSymbolAtLocation(node.typeName);
      if (sym && sym.flags & ts.SymbolFlags.Alias) sym = this.checker.getAliasedSymbol(sym);
      const decl = sym?.declarations?.find(ts.isTypeAliasDeclaration);
      if (decl) return this.literals(decl.type);
    }
    return [];
  }
}
