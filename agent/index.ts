export * from "./cni/assigner.js";
export * from "./cni/ipam-assigner.js";
export * from "./cni/pod-ipam.js";
export * from "./cni/server.js";
export * from "./dataplane/desired.js";
export * from "./dataplane/kernel.js";
export * from "./dataplane/model.js";
export * from "./dataplane/tracker.js";
