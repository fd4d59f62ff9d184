export * from "./bgp.js";
export * from "./crd.js";
export * from "./ipamblock.js";
export * from "./ippool.js";
export * from "./meta.js";
export * from "./nodenetworkstatus.js";
export * from "./routeintent.js";
export * from "./schema.js";
