import { Counter, Gauge, Histogram, register } from "prom-client";

/** Metrics are process-wide; getting them by name keeps a second import or instance from throwing. */
function counter(name: string, help: string, labelNames: string[]): Counter<string> {
  return (register.getSingleMetric(name) as Counter<string>) ?? new Counter({ name, help, labelNames });
}

function gauge(name: string, help: string, labelNames: string[]): Gauge<string> {
  return (register.getSingleMetric(name) as Gauge<string>) ?? new Gauge({ name, help, labelNames });
}

export const informerEvents = counter("weft_informer_events_total", "Events delivered to informer handlers", [
  "informer",
  "event",
]);

export const informerRestarts = counter(
  "weft_informer_restarts_total",
  "Watch restarts and relists of informers, by reason",
  ["informer", "reason"],
);

export const queueDepth = gauge("weft_workqueue_depth", "Keys waiting in a work queue", ["queue"]);

export const queueRetries = counter(
  "weft_workqueue_retries_total",
  "Keys put back into a work queue after a failure",
  ["queue"],
);

export const reconcileTotal = counter(
  "weft_reconcile_total",
  "Reconciliations by controller and result (success, error, terminal, requeue)",
  ["controller", "result"],
);

export const reconcileSeconds =
  (register.getSingleMetric("weft_reconcile_duration_seconds") as Histogram<string>) ??
  new Histogram({
    name: "weft_reconcile_duration_seconds",
    help: "Time spent in one reconciliation",
    labelNames: ["controller"],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  });

export const isLeader = gauge("weft_leader", "1 while this process holds the lease", ["lease"]);
