import { isDeepStrictEqual } from "node:util";
import { Document, isCollection, isPair, isScalar, parse, Scalar, visit } from "yaml";

/** Width the YAML is folded to (descriptions and CEL rules read as paragraphs). */
const WIDTH = 100;

/**
 * A generated object as YAML under a header comment: lists of short scalars in flow style, texts
 * that overflow a line folded (`>-`), everything else block style, keys in the order built. The
 * same object always gives the same bytes.
 */
export function renderYaml(header: string[], value: unknown): string {
  const doc = new Document(value);
  visit(doc, {
    Seq(_, seq) {
      if (seq.items.every((i) => isScalar(i) && String(i.value).length < 40)) seq.flow = true;
    },
    Scalar(_, s, path) {
      if (typeof s.value !== "string" || !s.value.includes(" ")) return;
      const pair = path.at(-1);
      const key = isPair(pair) && isScalar(pair.key) ? String(pair.key.value) : "";
      const indent = 2 * (path.filter((p) => isCollection(p)).length - 1);
      if (indent + key.length + 2 + s.value.length > WIDTH) s.type = Scalar.BLOCK_FOLDED;
    },
  });
  const body = doc.toString({ lineWidth: WIDTH, minContentWidth: 40, flowCollectionPadding: false });
  // The folding is only layout: what a reader of the file parses is exactly the object.
  if (!isDeepStrictEqual(parse(body), value))
    throw new Error("the YAML does not parse back to the object it shows");
  return `${header.map((l) => `# ${l}`).join("\n")}\n${body}`;
}
