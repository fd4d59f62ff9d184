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
