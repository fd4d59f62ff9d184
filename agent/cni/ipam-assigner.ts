import type { Assigner } from "../../ipam/client/index.js";
import { type IpamErrorCode, isIpamError, isReservedHandle } from "../../ipam/index.js";
import {
  type AddressAssigner,
  AddressesExhausted,
  AssignmentRefused,
  type AssignRequest,
  type RefusalKind,
} from "./assigner.js";

/** IPAM errors that are the pod's request, not a passing state: the runtime retrying cannot help. */
const REFUSALS: Partial<Record<IpamErrorCode, RefusalKind>> = {
  InvalidAnnotation: "InvalidAnnotation",
  AddressOutsidePools: "InvalidAnnotation",
  PoolNotUsable: "PoolNotUsable",
  AddressInUse: "AddressUnavailable",
  AddressUnavailable: "AddressUnavailable",
};

/**
 * The CNI server's addresses from the real IPAM: one compare-and-swap write of the node's block
 * per burst of pods (group commit), handles `<containerID>.<ifname>` carrying the pod's
 * namespace/name so `weftctl ipam check` and the GC can find the pod. The handles live in the
 * IPAMBlocks, so nothing is lost when the agent restarts.
 */
export class IpamAddressAssigner implements AddressAssigner {
  constructor(private readonly ipam: Assigner) {}

  async assign(req: AssignRequest): Promise<{ ips: string[] }> {
    try {
      const a = await this.ipam.assign({
        node: req.node,
        handle: req.handle,
        namespace: req.namespace,
        pod: req.pod,
        families: req.families,
        ...(req.ipam ? { choice: req.ipam.pools, fixed: req.ipam.addresses } : {}),
        ...(req.ipam?.addressSource ? { fixedSource: req.ipam.addressSource } : {}),
      });
      return { ips: a.ips };
    } catch (err) {
      if (isIpamError(err, "Exhausted") || isIpamError(err, "NoMatchingPool"))
        throw new AddressesExhausted(err.message);
      const refusal = isIpamError(err) ? REFUSALS[err.code] : undefined;
      if (refusal && isIpamError(err)) throw new AssignmentRefused(refusal, err.message);
      throw err;
    }
  }

  async release(handle: string): Promise<void> {
    await this.ipam.release(handle);
  }

  async lookup(handle: string): Promise<{ ips: string[] } | undefined> {
    const a = await this.ipam.lookup(handle);
    return a ? { ips: a.ips } : undefined;
  }

  async handles(node: string): Promise<string[]> {
    return (await this.ipam.handles(node)).filter((h) => !isReservedHandle(h));
  }
}
