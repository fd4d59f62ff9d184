export * from "./controller.js";
export * from "./health.js";
export * from "./informer.js";
export * from "./leaderelection.js";
export * from "./listwatch.js";
export * from "./shutdown.js";
export * from "./workqueue.js";
