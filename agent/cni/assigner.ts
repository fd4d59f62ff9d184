/**
 * Where pod addresses come from. The server only needs this small interface; the real
 * implementation is backed by the IPAM (ipam/ + datastore/: one compare-and-swap write of the
 * node's block, ipam-assigner.ts), and its handles are the state that survives an agent restart.
 */
import type { FamilyName } from "../../net/index.js";

export interface AssignRequest {
  node: string;
  /** `<containerID>.<ifname>` (names.podHandle) */
  handle: string;
  namespace: string;
  pod: string;
  families: FamilyName[];
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
