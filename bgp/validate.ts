import type { LabelSelector, SecretKeyRef } from "../api/index.js";

/**
 * Validation of user-supplied BGP values, returning messages instead of throwing so that a bad
 * object shows as a condition and never takes the whole topology down.
 */

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const OPERATORS = new Set(["In", "NotIn", "Exists", "DoesNotExist"]);

export function isLabelKey(k: unknown): boolean {
  if (typeof k !== "string" || k.length === 0) return false;
  const slash = k.indexOf("/");
  if (slash < 0) return LABEL_NAME.test(k);
  const prefix = k.slice(0, slash);
  const name = k.slice(slash + 1);
  return prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix) && LABEL_NAME.test(name);
}

export function isLabelValue(v: unknown): boolean {
  return typeof v === "string" && (v === "" || LABEL_NAME.test(v));
}

/** Problems with a label selector, empty when it is valid (a missing selector is valid). */
export function selectorProblems(sel: unknown, field: string): string[] {
  if (sel === undefined || sel === null) return [];
  if (typeof sel !== "object" || Array.isArray(sel)) return [`${field}: must be a label selector object`];
  const out: string[] = [];
  const { matchLabels, matchExpressions } = sel as LabelSelector;
  if (matchLabels !== undefined) {
    if (typeof matchLabels !== "object" || matchLabels === null || Array.isArray(matchLabels)) {
      out.push(`${field}.matchLabels: must be a map of strings`);
    } else {
      for (const [k, v] of Object.entries(matchLabels)) {
        if (!isLabelKey(k)) out.push(`${field}.matchLabels: invalid label key ${JSON.stringify(k)}`);
        if (!isLabelValue(v))
          out.push(`${field}.matchLabels[${JSON.stringify(k)}]: invalid label value ${JSON.stringify(v)}`);
      }
    }
  }
  if (matchExpressions !== undefined) {
    if (!Array.isArray(matchExpressions)) {
      out.push(`${field}.matchExpressions: must be a list`);
    } else {
      matchExpressions.forEach((e, i) => {
        const f = `${field}.matchExpressions[${i}]`;
        if (typeof e !== "object" || e === null) {
          out.push(`${f}: must be an object`);
          return;
        }
        if (!isLabelKey(e.key)) out.push(`${f}.key: invalid label key ${JSON.stringify(e.key)}`);
        if (!OPERATORS.has(e.operator as string)) {
          out.push(`${f}.operator: must be one of In, NotIn, Exists, DoesNotExist`);
          return;
        }
        const values = e.values;
        if (e.operator === "In" || e.operator === "NotIn") {
          if (!Array.isArray(values) || values.length === 0)
            out.push(`${f}.values: must be a non-empty list for ${e.operator}`);
          else if (!values.every(isLabelValue)) out.push(`${f}.values: contains an invalid label value`);
        } else if (values !== undefined && (!Array.isArray(values) || values.length > 0)) {
          out.push(`${f}.values: must be empty for ${e.operator}`);
        }
      });
    }
  }
  return out;
}

export function isASNumber(n: unknown): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 4294967295;
}

export function isPort(n: unknown): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 65535;
}

export function isIntInRange(n: unknown, min: number, max: number): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= min && n <= max;
}

export function secretRefProblems(ref: unknown, field: string): string[] {
  if (ref === undefined) return [];
  if (typeof ref !== "object" || ref === null) return [`${field}: must be a Secret key reference`];
  const r = ref as SecretKeyRef;
  const out: string[] = [];
  if (typeof r.name !== "string" || !DNS_SUBDOMAIN.test(r.name) || r.name.length > 253)
    out.push(`${field}.name: must be a Secret name`);
  if (r.namespace !== undefined && (typeof r.namespace !== "string" || !LABEL_NAME.test(r.namespace)))
    out.push(`${field}.namespace: must be a namespace name`);
  if (typeof r.key !== "string" || !/^[-._a-zA-Z0-9]{1,253}$/.test(r.key))
    out.push(`${field}.key: must be a Secret key`);
  return out;
}

/** Stable identity of a Secret key reference (what the agent resolves to a password). */
export function secretRefKey(ref: SecretKeyRef): string {
  return `${ref.namespace ?? ""}/${ref.name}/${ref.key}`;
}

/** A standard community "N:N", each half 0-65535, as BIRD's pair (N, N). */
export function parseCommunity(c: unknown): [number, number] | undefined {
  if (typeof c !== "string") return undefined;
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(c);
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = Number(m[2]);
  return a <= 65535 && b <= 65535 ? [a, b] : undefined;
}

export function communityProblems(list: unknown, field: string): string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) return [`${field}: must be a list of communities such as 65000:100`];
  const out: string[] = [];
  list.forEach((c, i) => {
    if (!parseCommunity(c))
      out.push(`${field}[${i}]: ${JSON.stringify(c)} is not a community N:N with each part 0-65535`);
  });
  return out;
}

/** BFD limits Weft accepts: BIRD takes less, but below 10 ms a loaded node flaps. */
export const BFD_LIMITS = { minIntervalMs: 10, maxIntervalMs: 60000, minMultiplier: 1, maxMultiplier: 255 };

export function bfdProblems(bfd: unknown, field: string): string[] {
  if (bfd === undefined) return [];
  if (typeof bfd !== "object" || bfd === null) return [`${field}: must be an object`];
  const b = bfd as { enabled?: unknown; intervalMilliseconds?: unknown; multiplier?: unknown };
  const out: string[] = [];
  if (b.enabled !== undefined && typeof b.enabled !== "boolean")
    out.push(`${field}.enabled: must be true or false`);
  if (
    b.intervalMilliseconds !== undefined &&
    !isIntInRange(b.intervalMilliseconds, BFD_LIMITS.minIntervalMs, BFD_LIMITS.maxIntervalMs)
  )
    out.push(
      `${field}.intervalMilliseconds: ${JSON.stringify(b.intervalMilliseconds)} is out of range (${BFD_LIMITS.minIntervalMs}-${BFD_LIMITS.maxIntervalMs})`,
    );
  if (
    b.multiplier !== undefined &&
    !isIntInRange(b.multiplier, BFD_LIMITS.minMultiplier, BFD_LIMITS.maxMultiplier)
  )
    out.push(
      `${field}.multiplier: ${JSON.stringify(b.multiplier)} is out of range (${BFD_LIMITS.minMultiplier}-${BFD_LIMITS.maxMultiplier})`,
    );
  return out;
}
