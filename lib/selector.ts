import type { LabelSelector, LabelSelectorRequirement } from "../api/index.js";

/**
 * Kubernetes label selector semantics: every matchLabels pair and every expression must hold;
 * an empty or missing selector matches everything.
 */
export function matchesSelector(
  selector: LabelSelector | undefined,
  labels: Record<string, string> = {},
): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[k] !== v) return false;
  }
  for (const expr of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, expr.key);
    const value = labels[expr.key];
    switch (expr.operator) {
      case "In":
        if (!has || !(expr.values ?? []).includes(value as string)) return false;
        break;
      case "NotIn":
        if (has && (expr.values ?? []).includes(value as string)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        throw new Error(`unknown selector operator ${String((expr as { operator: unknown }).operator)}`);
    }
  }
  return true;
}

/**
 * Parses kubectl's label selector syntax (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`) into the
 * structured form, so flags and API objects are matched by one function.
 */
export function parseSelector(text: string): LabelSelector {
  const matchLabels: Record<string, string> = {};
  const matchExpressions: NonNullable<LabelSelector["matchExpressions"]> = [];
  // split on commas that are not inside parentheses
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  for (const raw of parts.map((p) => p.trim()).filter(Boolean)) {
    const term = parseTerm(raw);
    if (!term)
      throw new Error(`invalid label selector term ${JSON.stringify(raw)} in ${JSON.stringify(text)}`);
    if ("equals" in term) matchLabels[term.key] = term.equals;
    else matchExpressions.push(term);
  }
  return {
    ...(Object.keys(matchLabels).length ? { matchLabels } : {}),
    ...(matchExpressions.length ? { matchExpressions } : {}),
  };
}

type Term = { key: string; equals: string } | LabelSelectorRequirement;

const TERMS: Array<[RegExp, (m: RegExpExecArray) => Term]> = [
  [
    /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/,
    (m) => ({
      key: m[1] as string,
      operator: m[2] === "in" ? "In" : "NotIn",
      values: (m[3] ?? "")
        .split(",")
        .map((v) => v.trim())
        .filter(Boolean),
    }),
  ],
  [
    /^([\w./-]+)\s*!=\s*([\w./-]*)$/,
    (m) => ({ key: m[1] as string, operator: "NotIn", values: [m[2] as string] }),
  ],
  [/^([\w./-]+)\s*==?\s*([\w./-]*)$/, (m) => ({ key: m[1] as string, equals: m[2] as string })],
  [/^!([\w./-]+)$/, (m) => ({ key: m[1] as string, operator: "DoesNotExist" })],
  [/^([\w./-]+)$/, (m) => ({ key: m[1] as string, operator: "Exists" })],
];

function parseTerm(raw: string): Term | undefined {
  for (const [re, build] of TERMS) {
    const m = re.exec(raw);
    if (m) return build(m);
  }
  return undefined;
}
