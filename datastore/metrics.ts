import { Counter, register } from "prom-client";

function counter(name: string, help: string, labelNames: string[]): Counter<string> {
  // Registered once per process even if several backends are created.
  const existing = register.getSingleMetric(name);
  if (existing) return existing as Counter<string>;
  return new Counter({ name, help, labelNames });
}

/** Every write request sent to the backend, conflicts included (the IPAM benchmark's writes per address). */
export const writesTotal = counter(
  "weft_datastore_writes_total",
  "Write requests sent to the datastore, by kind and verb",
  ["kind", "verb"],
);

/** Compare-and-swap writes that lost against a concurrent writer. */
export const conflictsTotal = counter(
  "weft_datastore_conflicts_total",
  "Writes refused by the datastore because the object changed since it was read",
  ["kind", "verb"],
);
