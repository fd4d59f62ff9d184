export * from "./plugin.js";
export * from "./result.js";
export * from "./types.js";
