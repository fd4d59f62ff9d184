/**
 * The agent's answers to CNI commands: the pod's addresses come from the AddressAssigner (whose
 * handles are the only state that must survive an agent restart); everything else is derived
 * from the sandbox id and rebuilt or checked against the kernel on demand. Every command is
 * idempotent.
 */
import { existsSync } from "node:fs";
import {
  type AgentRequest,
  CniError,
  type CniResult,
  ErrorCode,
  normalizePrevResult,
} from "../../cni/index.js";
import { errorMessage, KeyedLock, type Logger } from "../../lib/index.js";
import type { FamilyName } from "../../net/index.js";
import {
  type AddressAssigner,
  AddressesExhausted,
  AssignmentRefused,
  type PodEvents,
  type PodIpamSource,
  type PodRef,
  type RefusalKind,
} from "./assigner.js";
import type { HostNet } from "./hostnet.js";
import { HOST_VETH_MAC, hostVethName, podHandle, podMac } from "./names.js";
import { buildResult, hostPrefix, type PodWiring, podProblems } from "./plan.js";
import type { PodNetns } from "./podns.js";

export interface PodNetworkOptions {
  node: string;
  assigner: AddressAssigner;
  hostNet: HostNet;
  podNetns: PodNetns;
  /** pod MTU when the network configuration sets none (VXLAN: underlay MTU - 50) */
  /** A number, or asked per pod (the agent follows the underlay's MTU). */
  defaultMtu?: number | (() => number | undefined);
  defaultFamilies?: FamilyName[];
  log?: Logger;
  /** Reads the pod's IPAM annotations (pools, fixed addresses); without it every pod gets the defaults. */
  podIpam?: PodIpamSource;
  /** Warning Events on pods whose addresses could not be assigned. */
  events?: PodEvents;
}

/** How a refusal reaches the runtime (CNI error code) and the pod (Event reason). */
const REFUSAL: Record<RefusalKind, { code: number; reason: string }> = {
  InvalidAnnotation: { code: ErrorCode.InvalidPodAnnotation, reason: "InvalidIPAMAnnotation" },
  PoolNotUsable: { code: ErrorCode.PoolNotUsable, reason: "IPPoolNotUsable" },
  AddressUnavailable: { code: ErrorCode.AddressUnavailable, reason: "FixedAddressUnavailable" },
};

export class PodNetworkService {
  /** Requests for one handle run one after another; different pods run concurrently. */
  private readonly perHandle = new KeyedLock();

  constructor(private readonly o: PodNetworkOptions) {}

  handle(req: AgentRequest): Promise<CniResult | undefined> {
    switch (req.command) {
      case "ADD":
        return this.perHandle.run(podHandle(req.containerId, req.ifname), () => this.add(req));
      case "DEL":
        return this.perHandle
          .run(podHandle(req.containerId, req.ifname), () => this.del(req))
          .then(() => undefined);
      case "CHECK":
        return this.perHandle
          .run(podHandle(req.containerId, req.ifname), () => this.check(req))
          .then(() => undefined);
      case "GC":
        return this.gc(req).then(() => undefined);
      case "STATUS":
        return Promise.resolve(undefined);
      default:
        throw new CniError(ErrorCode.InvalidEnvironment, `unknown command ${JSON.stringify(req.command)}`);
    }
  }

  private wiring(req: AgentRequest, ips: string[]): PodWiring {
    const d = this.o.defaultMtu;
    const mtu = req.config.mtu ?? (typeof d === "function" ? d() : d);
    return {
      containerId: req.containerId,
      netns: req.netns,
      ifname: req.ifname,
      hostVeth: hostVethName(req.containerId, req.ifname),
      podMac: podMac(req.containerId, req.ifname),
      ips,
      ...(mtu ? { mtu } : {}),
    };
  }

  private async add(req: AgentRequest): Promise<CniResult> {
    if (!existsSync(req.netns)) {
      throw new CniError(ErrorCode.InvalidEnvironment, `network namespace ${req.netns} does not exist`);
    }
    const handle = podHandle(req.containerId, req.ifname);
    const known = await this.o.assigner.lookup(handle);
    const namespace = req.args.K8S_POD_NAMESPACE ?? "";
    const name = req.args.K8S_POD_NAME ?? "";
    let pod: PodRef = { namespace, name };
    let ips: string[];
    try {
      const asked = known || !this.o.podIpam || !namespace || !name ? undefined : await this.readPod(pod);
      if (asked) pod = asked.pod;
      ({ ips } = await this.o.assigner.assign({
        node: this.o.node,
        handle,
        namespace,
        pod: name,
        families: req.config.families ?? this.o.defaultFamilies ?? ["ipv4"],
        ...(asked ? { ipam: asked.request } : {}),
      }));
    } catch (err) {
      if (err instanceof CniError) throw err;
      if (err instanceof AssignmentRefused) {
        const { code, reason } = REFUSAL[err.kind];
        if (name) this.o.events?.warn(pod, reason, err.message);
        this.o.log?.warn("pod address refused", {
          handle,
          pod: `${namespace}/${name}`,
          reason,
          error: err.message,
        });
        throw new CniError(code, "the pod's address request cannot be met", err.message);
      }
      if (err instanceof AddressesExhausted) {
        if (name) this.o.events?.warn(pod, "IPAddressesExhausted", err.message);
        throw new CniError(ErrorCode.Internal, "no address available", err.message);
      }
      throw new CniError(ErrorCode.TryAgainLater, "address assignment failed", errorMessage(err));
    }
    const w = this.wiring(req, ips);
    try {
      await this.wire(w);
    } catch (err) {
      // a fresh assignment is given back so that a failed ADD leaks nothing even without DEL
      if (!known) await this.o.assigner.release(handle).catch(() => undefined);
      if (err instanceof CniError) throw err;
      throw new CniError(
        ErrorCode.Internal,
        `wiring ${req.ifname} in ${req.netns} failed`,
        errorMessage(err),
      );
    }
    this.o.log?.info("pod added", { handle, ips, veth: w.hostVeth, pod: req.args.K8S_POD_NAME });
    return buildResult(w, req.config.cniVersion, req.config.dns);
  }

  /** The pod's annotations; an API that cannot be read is a passing failure (the runtime retries). */
  private async readPod(pod: PodRef) {
    try {
      return await this.o.podIpam!.lookup(pod.namespace, pod.name);
    } catch (err) {
      if (err instanceof AssignmentRefused) throw err;
      throw new CniError(
        ErrorCode.TryAgainLater,
        `cannot read pod ${pod.namespace}/${pod.name} and its namespace for their weft.dev/ IPAM annotations`,
        errorMessage(err),
      );
    }
  }

  /** Converges the kernel to the wiring: reuse an existing pair if the pod side takes the config. */
  private async wire(w: PodWiring): Promise<void> {
    const { hostNet, podNetns } = this.o;
    let link = await hostNet.link(w.hostVeth);
    let fresh = false;
    if (link) {
      try {
        await podNetns.configure(w);
      } catch {
        // the pair exists but its pod side is not where it should be: start over
        await hostNet.deleteLink(w.hostVeth);
        link = undefined;
      }
    }
    if (!link) {
      link = await hostNet.createVeth(
        {
          hostName: w.hostVeth,
          hostMac: HOST_VETH_MAC,
          peerName: w.ifname,
          peerMac: w.podMac,
          ...(w.mtu ? { mtu: w.mtu } : {}),
        },
        w.netns,
      );
      fresh = true;
    }
    const index = link.index;
    // the pod side (a process spawn) and the host side (netlink) are independent: overlap them
    await Promise.all([
      fresh ? podNetns.configure(w) : undefined,
      link.up ? undefined : hostNet.setUp(index),
      ...w.ips.map((ip) => hostNet.replacePodRoute(ip, index)),
      ...w.ips.map((ip) => hostNet.replacePodNeighbor(ip, index, w.podMac)),
    ]);
  }

  private async del(req: AgentRequest): Promise<void> {
    const handle = podHandle(req.containerId, req.ifname);
    // the pod side and the host route go with the host side; a missing link is fine
    await this.o.hostNet.deleteLink(hostVethName(req.containerId, req.ifname));
    try {
      await this.o.assigner.release(handle);
    } catch (err) {
      throw new CniError(ErrorCode.TryAgainLater, "address release failed", errorMessage(err));
    }
    this.o.log?.info("pod deleted", { handle });
  }

  private async check(req: AgentRequest): Promise<void> {
    const handle = podHandle(req.containerId, req.ifname);
    const held = await this.o.assigner.lookup(handle);
    if (!held) throw new CniError(ErrorCode.UnknownContainer, `no addresses are assigned to ${handle}`);
    const problems: string[] = [];
    const prev = normalizePrevResult(req.config.prevResult);
    if (prev?.ips) {
      const want = new Set(held.ips.map(hostPrefix));
      const podIdx = prev.interfaces?.findIndex((i) => i.name === req.ifname && i.sandbox !== undefined);
      const got = prev.ips.filter((ip) => podIdx === undefined || podIdx < 0 || ip.interface === podIdx);
      for (const ip of got) {
        if (!want.has(ip.address))
          problems.push(`prevResult address ${ip.address} is not assigned to ${handle}`);
      }
    }
    const w = this.wiring(req, held.ips);
    const link = await this.o.hostNet.link(w.hostVeth);
    if (!link) problems.push(`host veth ${w.hostVeth} is missing`);
    else {
      if (!link.up) problems.push(`host veth ${w.hostVeth} is down`);
      for (const ip of w.ips) {
        if (!(await this.o.hostNet.hasPodRoute(ip, link.index))) {
          problems.push(`host route ${hostPrefix(ip)} dev ${w.hostVeth} is missing`);
        }
      }
    }
    if (!existsSync(req.netns)) problems.push(`network namespace ${req.netns} does not exist`);
    else {
      try {
        problems.push(...podProblems(w, await this.o.podNetns.inspect(req.netns, req.ifname)));
      } catch (err) {
        problems.push(`cannot inspect ${req.ifname} in ${req.netns}: ${errorMessage(err)}`);
      }
    }
    if (problems.length)
      throw new CniError(ErrorCode.Internal, `CHECK of ${handle} failed`, problems.join("; "));
  }

  /** CNI 1.1 GC: release this node's pod handles the runtime no longer knows about. */
  private async gc(req: AgentRequest): Promise<void> {
    const { assigner } = this.o;
    if (!assigner.handles) return;
    const valid = new Set(
      (req.config["cni.dev/valid-attachments"] ?? []).map((a) => podHandle(a.containerID, a.ifname)),
    );
    for (const handle of await assigner.handles(this.o.node)) {
      if (valid.has(handle)) continue;
      const dot = handle.lastIndexOf(".");
      if (dot <= 0) continue;
      await this.o.hostNet.deleteLink(hostVethName(handle.slice(0, dot), handle.slice(dot + 1)));
      await assigner.release(handle);
      this.o.log?.info("pod handle garbage-collected", { handle });
    }
  }
}
