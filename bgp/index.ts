export * from "./birdc.js";
export * from "./inputs.js";
export * from "./node-status.js";
export * from "./render.js";
export * from "./topology.js";
export * from "./validate.js";
