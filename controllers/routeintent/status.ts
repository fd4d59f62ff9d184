import type { RouteIntent, RouteIntentSpec, RouteIntentStatus } from "../../api/index.js";
import { setCondition } from "../../lib/index.js";

/** Why a node's intent cannot be complete yet; the reason is the Ready condition's reason. */
export interface IntentWait {
  reason: "NoUnderlayAddress" | "InvalidUnderlayAddress" | "WaitingForVTEP";
  message: string;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function describeIntent(spec: RouteIntentSpec): string {
  return (
    `${plural(spec.routes.length, "route")}, ${plural(spec.neighbors.length, "neighbor")}, ` +
    `${plural(spec.fdb.length, "FDB entry", "FDB entries")} for ${spec.encapsulation} via ${spec.underlayIP}`
  );
}

/**
 * The status the controller publishes for an intent: Ready when the spec is everything the node's
 * blocks and pools imply; not Ready with the reason when it cannot be written yet (`problem` is an
 * IntentWait: the intent keeps its last spec) or when blocks had to be left out of it (`problem`
 * names each). observedGeneration is the generation of the spec the controller wrote, so
 * `kubectl wait` and GitOps health checks can tell a current intent from one still being rewritten.
 */
export function intentStatus(
  intent: RouteIntent,
  problem: IntentWait | string[] | undefined,
  now: Date,
): RouteIntentStatus {
  const generation = intent.metadata.generation;
  const leftOut = Array.isArray(problem) ? problem : [];
  const wait = Array.isArray(problem) ? undefined : problem;
  const conditions = setCondition(
    intent.status?.conditions,
    wait
      ? { type: "Ready", status: false, reason: wait.reason, message: wait.message }
      : leftOut.length
        ? {
            type: "Ready",
            status: false,
            reason: "RoutesLeftOut",
            message: `${describeIntent(intent.spec)}; left out: ${leftOut.join("; ")}`.slice(0, 4000),
          }
        : { type: "Ready", status: true, reason: "Published", message: describeIntent(intent.spec) },
    generation,
    now,
  );
  return { ...(generation !== undefined ? { observedGeneration: generation } : {}), conditions };
}
