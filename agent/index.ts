export * from "./cni/assigner.js";
export * from "./cni/server.js";
export * from "./dataplane/desired.js";
export * from "./dataplane/kernel.js";
export * from "./dataplane/model.js";
export * from "./dataplane/tracker.js";
export * from "./nat/index.js";
