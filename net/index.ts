export * from "./cidr.js";
export * from "./family.js";
export * from "./ip.js";
export * from "./ipv6text.js";
