export * from "./rules.js";
export * from "./table.js";
