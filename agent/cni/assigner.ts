/**
 * Where pod addresses come from. The server only needs this small interface; the real
 * implementation is backed by the IPAM (ipam/ + datastore/: one compare-and-swap write of the
 * node's block, ipam-assigner.ts), and its handles are the state that survives an agent restart.
 */
import type { PodIpamRequest } from "../../ipam/index.js";
import type { FamilyName } from "../../net/index.js";

export interface AssignRequest {
  node: string;
  /** `<containerID>.<ifname>` (names.podHandle) */
  handle: string;
  namespace: string;
  pod: string;
  families: FamilyName[];
  /** What the pod's annotations ask for (pools per family, fixed addresses); absent: defaults. */
  ipam?: PodIpamRequest;
}

export interface AddressAssigner {
  /** Idempotent per handle: a handle that already holds addresses gets the same ones back. */
  assign(req: AssignRequest): Promise<{ ips: string[] }>;
  /** Idempotent: releasing an unknown handle succeeds. */
  release(handle: string): Promise<void>;
  /** The addresses a handle holds, without assigning any. */
  lookup(handle: string): Promise<{ ips: string[] } | undefined>;
  /** Handles held on this node (for CNI GC); optional. */
  handles?(node: string): Promise<string[]>;
}

/** Raised when the pool is used up; the server answers it as a CNI error, not a crash. */
export class AddressesExhausted extends Error {}

/** Why the IPAM refused what a pod asked for; each is a CNI error code of its own and an Event reason. */
export type RefusalKind = "InvalidAnnotation" | "PoolNotUsable" | "AddressUnavailable";

/**
 * A pod's IPAM request that cannot be met as asked (an annotation that does not parse, a pool it
 * may not use, a fixed address someone else holds). Never retried with other pools: the message
 * names what to fix.
 */
export class AssignmentRefused extends Error {
  constructor(
    readonly kind: RefusalKind,
    message: string,
  ) {
    super(message);
    this.name = "AssignmentRefused";
  }
}

/** The pod whose sandbox is being wired, as the Kubernetes API knows it. */
export interface PodRef {
  namespace: string;
  name: string;
  uid?: string;
}

/** Reads what a pod asks of the IPAM (its annotations and its namespace's). */
export interface PodIpamSource {
  /**
   * undefined when the API has no such pod (a sandbox made outside Kubernetes). Throws
   * AssignmentRefused for annotations that cannot be used, anything else when the API cannot be
   * read (the runtime tries again).
   */
  lookup(namespace: string, name: string): Promise<{ pod: PodRef; request: PodIpamRequest } | undefined>;
}

/** Warning Events on pods whose addresses could not be assigned (best effort: never fails the caller). */
export interface PodEvents {
  warn(pod: PodRef, reason: string, message: string): void;
}
