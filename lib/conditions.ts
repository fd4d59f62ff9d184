import type { Condition } from "../api/index.js";

export interface ConditionInput {
  type: string;
  status: boolean | Condition["status"];
  reason: string;
  message: string;
}

/** Kubernetes time format for conditions: seconds, no fraction. */
function conditionTime(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * One condition the Kubernetes way: lastTransitionTime changes only when the status flips,
 * observedGeneration records which spec the condition describes (GitOps health checks and
 * `kubectl wait --for=condition=Ready` rely on both).
 */
function nextCondition(
  previous: Condition | undefined,
  input: ConditionInput,
  observedGeneration: number | undefined,
  now: string,
): Condition {
  const status: Condition["status"] =
    typeof input.status === "boolean" ? (input.status ? "True" : "False") : input.status;
  return {
    type: input.type,
    status,
    reason: input.reason,
    message: input.message,
    lastTransitionTime: previous && previous.status === status ? previous.lastTransitionTime : now,
    ...(observedGeneration !== undefined ? { observedGeneration } : {}),
  };
}

/** Sets one condition in a list (see nextCondition). Returns a new list; the input is not changed. */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  observedGeneration: number | undefined,
  now: Date = new Date(),
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === input.type);
  const next = nextCondition(i >= 0 ? list[i] : undefined, input, observedGeneration, conditionTime(now));
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

/**
 * The whole list becomes exactly `next` (types not named are dropped), each condition keeping its
 * lastTransitionTime from `old` where its status did not change. `now` is already formatted.
 */
export function mergeConditions(
  old: readonly Condition[] | undefined,
  next: readonly ConditionInput[],
  observedGeneration: number | undefined,
  now: string,
): Condition[] {
  return next.map((c) =>
    nextCondition(
      old?.find((o) => o.type === c.type),
      c,
      observedGeneration,
      now,
    ),
  );
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
