/**
 * Weft IPAM: pure allocation logic (no I/O). The controller and the agent feed it snapshots of
 * pools and blocks from the datastore and write back what it returns:
 *
 *   const plan = planAssignment({ family, pools, node, ownBlocks, claimed, count });
 *   useBlock / borrow: assignInBlock(plan.block, requests) -> one compare-and-swap of the block
 *   claim:             assignInBlock(plan.block, requests) -> one create of the IPAMBlock
 *   conflict or AlreadyExists: refresh the snapshot and plan again.
 *
 * Callers own three rules the library cannot see: look the handle up first (findHandle over the
 * node's blocks) so a repeated request returns the address it already has; leave pools that
 * findOverlaps reports out of `pools`; keep block CIDRs canonical (blockCidrAt's text).
 */
/** parseIP and parseCidr of net/, throwing IpamError (InvalidAddress, InvalidCidr). */
export { parseCidr, parseIP } from "./addr.js";
export {
  type EligiblePools,
  eligiblePools,
  matchingFamilies,
  type NodeRef,
  ownBlocksIn,
  type SkippedPool,
  toPool,
} from "./affinity.js";
export * from "./annotations.js";
export * from "./audit.js";
export {
  type AssignAtResult,
  type AssignedAddress,
  type AssignOptions,
  type AssignRequest,
  type AssignResult,
  addressAt,
  allocationsOf,
  assertBlock,
  assignAt,
  assignInBlock,
  blockAddressCount,
  borrowedAddresses,
  borrowersOf,
  checkBlock,
  findHandle,
  freeCount,
  holderAt,
  isEmpty,
  isEmptyOfPods,
  isReservedHandle,
  newBlockSpec,
  ordinalOf,
  RESERVED_HANDLE_PREFIXES,
  type ReleaseResult,
  release,
  releaseIfSequence,
  usedCount,
  vtepHandle,
} from "./block.js";
export { checkPoolChoice, poolProblem } from "./choice.js";
export { IpamError, type IpamErrorCode, isIpamError } from "./errors.js";
export { describeHolder, type FixedInput, type FixedPlan, planFixed } from "./fixed.js";
export { type ExhaustionInput, type ExhaustionOutlook, exhaustionOutlook } from "./forecast.js";
export {
  type CandidateOptions,
  type CidrSet,
  candidateBlocks,
  candidateIndex,
  candidateIndices,
  orderKey,
  permute,
  takenIndices,
} from "./order.js";
export {
  BLOCK_SIZE_RANGE,
  blockCidrAt,
  blockCidrFor,
  blockCidrOfIndex,
  blockCount,
  blockIndexOf,
  findOverlaps,
  type Pool,
  type PoolRef,
  parsePool,
  poolContains,
  poolContainsAddress,
  poolsOverlap,
  validatePoolSpec,
} from "./pool.js";
export { type PoolView, poolView } from "./poolview.js";
export {
  fullyReserved,
  NO_RESERVATIONS,
  parseEntry as parseReservationEntry,
  type ReservationReport,
  type ReservedRange,
  type ReservedSet,
  reservationOf,
  reservationReport,
  reservedOrdinals,
  reservedSet,
} from "./reservation.js";
export {
  type DualStackPlan,
  type JoinClaim,
  type JoinPlan,
  type Plan,
  type PlanInput,
  planAssignment,
  planDualStack,
  planJoin,
} from "./select.js";
export { type PoolUsage, poolUsage } from "./stats.js";
