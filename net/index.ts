export * from "./ipv6text.js";
