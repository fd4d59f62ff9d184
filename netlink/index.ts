export * from "./addr.js";
export * from "./bulk.js";
export * from "./constants.js";
export * from "./decode.js";
export * from "./encode.js";
export * from "./rtnl.js";
export { NlWriter } from "./writer.js";
