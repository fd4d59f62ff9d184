import type { RouteIntent, RouteIntentSpec, RouteIntentStatus } from "../../api/index.js";
import { setCondition } from "../../lib/index.js";

/** Why a node's intent cannot be complete yet; the reason is the Ready condition's reason. */
export interface IntentWait {
  reason: "NoUnderlayAddress" | "WaitingForVTEP";
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
 * The status the controller publishes for an intent: Ready when the spec is what the node's blocks
 * and pools imply (wait absent), not Ready with the reason otherwise. observedGeneration is the
 * generation of the spec the controller wrote, so `kubectl wait` and GitOps health checks can tell
 * a current intent from one still being rewritten. Problems that did not stop the intent (a bad
 * entry in the node's weft.dev/underlay-ip annotation) are added to the message.
 */
export function intentStatus(
  intent: RouteIntent,
  wait: IntentWait | undefined,
  now: Date,
  problems: readonly string[] = [],
): RouteIntentStatus {
  const generation = intent.metadata.generation;
  const conditions = setCondition(
    intent.status?.conditions,
    wait
      ? { type: "Ready", status: false, reason: wait.reason, message: wait.message }
      : {
          type: "Ready",
          status: true,
          reason: "Published",
          message: [describeIntent(intent.spec), ...problems].join("; "),
        },
    generation,
    now,
  );
  return { ...(generation !== undefined ? { observedGeneration: generation } : {}), conditions };
}
