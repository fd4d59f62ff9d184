import type { LabelSelector } from "../api/meta.js";

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
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(raw))) {
      const values = (m[3] ?? "").split(",").map((v) => v.trim()).filter(Boolean);
      matchExpressions.push({ key: m[1] as string, operator: m[2] === "in" ? "In" : "NotIn", values });
    } else if ((m = /^([\w./-]+)\s*!=\s*([\w./-]*)$/.exec(raw))) {
      matchExpressions.push({ key: m[1] as string, operator: "NotIn", values: [m[2] as string] });
    } else if ((m = /^([\w./-]+)\s*==?\s*([\w./-]*)$/.exec(raw))) {
      matchLabels[m[1] as string] = m[2] as string;
    } else if ((m = /^!([\w./-]+)$/.exec(raw))) {
      matchExpressions.push({ key: m[1] as string, operator: "DoesNotExist" });
    } else if ((m = /^([\w./-]+)$/.exec(raw))) {
      matchExpressions.push({ key: m[1] as string, operator: "Exists" });
    } else {
      throw new Error(`invalid label selector term ${JSON.stringify(raw)} in ${JSON.stringify(text)}`);
    }
  }
  return {
    ...(Object.keys(matchLabels).length ? { matchLabels } : {}),
    ...(matchExpressions.length ? { matchExpressions } : {}),
  };
}
