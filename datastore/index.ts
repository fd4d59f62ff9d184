export * from "./backoff.js";
export * from "./factory.js";
export * from "./kubelist.js";
export * from "./kubernetes.js";
export * from "./kubewatch.js";
export * from "./metrics.js";
export * from "./mutate.js";
export * from "./store.js";
