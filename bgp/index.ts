export * from "./birdc.js";
export * from "./inputs.js";
export * from "./node-status.js";
export * from "./reflectors.js";
export * from "./render.js";
export * from "./services.js";
export * from "./topology.js";
export * from "./validate.js";
