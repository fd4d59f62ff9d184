import type { Condition } from "../api/meta.js";

export interface ConditionInput {
  type: string;
  status: boolean | Condition["status"];
  reason: string;
  message: string;
}

/**
 * Sets one condition in a list the Kubernetes way: lastTransitionTime changes only when the status
 * flips, observedGeneration records which spec the condition describes (GitOps health checks and
 * `kubectl wait --for=condition=Ready` rely on both). Returns a new list; the input is not changed.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  observedGeneration: number | undefined,
  now: Date = new Date(),
): Condition[] {
  const status: Condition["status"] =
    typeof input.status === "boolean" ? (input.status ? "True" : "False") : input.status;
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === input.type);
  const previous = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: input.type,
    status,
    reason: input.reason,
    message: input.message,
    lastTransitionTime:
      previous && previous.status === status
        ? previous.lastTransitionTime
        : now.toISOString().replace(/\.\d{3}Z$/, "Z"),
    ...(observedGeneration !== undefined ? { observedGeneration } : {}),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function conditionOf(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return conditionOf(conditions, type)?.status === "True";
}
