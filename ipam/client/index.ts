/**
 * The one IPAM client of the agent, the controller and weftctl: the Assigner (assign, release,
 * claim with group commit over the Store) and the block cache it plans from.
 */
export * from "./assigner.js";
export { BlockCache } from "./blockcache.js";
