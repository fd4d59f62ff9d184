export * from "./apply.js";
export * from "./desired.js";
export * from "./diff.js";
export * from "./kernel.js";
export * from "./model.js";
export * from "./observe.js";
export * from "./tracker.js";
export * from "./vxlan.js";
