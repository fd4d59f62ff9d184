import { DEFAULT_NAMESPACE } from "../api/index.js";

/**
 * The namespace this component runs in: POD_NAMESPACE, which the chart sets from the downward API,
 * else DEFAULT_NAMESPACE.
 */
export function ownNamespace(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return env.POD_NAMESPACE || DEFAULT_NAMESPACE;
}
