/**
 * The local VXLAN device: a pure plan (what to change) and the I/O that carries it out.
 * VNI, port, local address, learning and underlay link are fixed at creation, so a change there
 * recreates the device; MTU, MAC and up/down are changed in place.
 */

import { canonicalIP } from "../../net/index.js";
import {
  type AddressInfo,
  encodeAddress,
  encodeLinkChange,
  encodeLinkDelete,
  encodeVxlanLink,
  IFA_F_NODAD,
  type LinkChange,
  type LinkInfo,
  type Rtnl,
  type VxlanSpec,
} from "../../netlink/index.js";
import { VXLAN_OVERHEAD, type VxlanDeviceConfig } from "./model.js";

export interface UnderlayInfo {
  index: number;
  name: string;
  mtu: number;
}

export type VxlanPlan =
  | { op: "none" }
  | { op: "create"; spec: VxlanSpec }
  | { op: "recreate"; reason: string; spec: VxlanSpec }
  | { op: "update"; reason: string; change: LinkChange };

export function vxlanMTU(cfg: VxlanDeviceConfig, underlay: UnderlayInfo): number {
  return cfg.mtu ?? underlay.mtu - VXLAN_OVERHEAD;
}

export function planVxlan(
  cfg: VxlanDeviceConfig,
  link: LinkInfo | undefined,
  underlay: UnderlayInfo,
): VxlanPlan {
  const mtu = vxlanMTU(cfg, underlay);
  const spec: VxlanSpec = {
    name: cfg.name,
    vni: cfg.vni,
    port: cfg.port,
    local: cfg.localIP,
    link: underlay.index,
    learning: false,
    mtu,
    up: true,
    ...(cfg.mac ? { mac: cfg.mac } : {}),
  };
  if (!link) return { op: "create", spec };
  const v = link.vxlan;
  const fixed: Array<[string, unknown, unknown]> = [
    ["kind", link.kind, "vxlan"],
    ["vni", v?.vni, cfg.vni],
    ["port", v?.port, cfg.port],
    ["local", v?.local && canonicalIP(v.local), cfg.localIP],
    ["learning", v?.learning, false],
    ["underlay link", v?.link, underlay.index],
  ];
  const wrong = fixed.filter(([, have, want]) => have !== want);
  if (wrong.length) {
    const reason = wrong.map(([what, have, want]) => `${what} ${String(have)} -> ${String(want)}`).join(", ");
    return { op: "recreate", reason, spec };
  }
  const change: LinkChange = { index: link.index };
  const why: string[] = [];
  if (!link.up) {
    change.up = true;
    why.push("down -> up");
  }
  if (link.mtu !== mtu) {
    change.mtu = mtu;
    why.push(`mtu ${link.mtu} -> ${mtu}`);
  }
  if (cfg.mac && link.mac !== cfg.mac) {
    change.mac = cfg.mac;
    why.push(`mac ${link.mac} -> ${cfg.mac}`);
  }
  return why.length ? { op: "update", reason: why.join(", "), change } : { op: "none" };
}

/** The device's global addresses against the VTEP addresses (one per family) it should carry. */
export function planAddresses(
  want: readonly string[] | undefined,
  have: readonly AddressInfo[],
): { add: string[]; del: string[] } {
  const wanted = new Set(want ?? []);
  const global = have.filter((a) => a.scope === 0);
  const del = global.filter((a) => !wanted.has(a.cidr)).map((a) => a.cidr);
  const add = [...wanted].filter((w) => !global.some((a) => a.cidr === w));
  return { add, del };
}

export interface EnsureResult {
  link: LinkInfo;
  underlay: UnderlayInfo;
  /** A new device: everything that lived on the old one is gone. */
  created: boolean;
  changes: string[];
}

export async function findUnderlay(rtnl: Rtnl, cfg: VxlanDeviceConfig): Promise<UnderlayInfo> {
  if (cfg.underlayDevice) {
    const l = await rtnl.link(cfg.underlayDevice);
    if (!l) throw new Error(`underlay device ${cfg.underlayDevice} not found`);
    return { index: l.index, name: l.name, mtu: l.mtu ?? 1500 };
  }
  const addr = (await rtnl.addresses()).find((a) => a.ip === cfg.localIP);
  if (!addr) throw new Error(`no device holds the underlay address ${cfg.localIP}`);
  const l = (await rtnl.links()).find((x) => x.index === addr.index);
  if (!l) throw new Error(`underlay device ${addr.index} vanished`);
  return { index: l.index, name: l.name, mtu: l.mtu ?? 1500 };
}

export async function ensureVxlan(rtnl: Rtnl, cfg: VxlanDeviceConfig): Promise<EnsureResult> {
  const underlay = await findUnderlay(rtnl, cfg);
  let link = await rtnl.link(cfg.name);
  const plan = planVxlan(cfg, link, underlay);
  const changes: string[] = [];
  let created = false;
  if (plan.op === "recreate" && link) {
    changes.push(`recreate ${cfg.name}: ${plan.reason}`);
    await rtnl.request(encodeLinkDelete(link.index), `delete ${cfg.name}`);
  }
  if (plan.op === "create" || plan.op === "recreate") {
    if (plan.op === "create") changes.push(`create ${cfg.name}`);
    await rtnl.request(encodeVxlanLink(plan.spec), `create ${cfg.name}`);
    created = true;
  } else if (plan.op === "update") {
    changes.push(`update ${cfg.name}: ${plan.reason}`);
    await rtnl.request(encodeLinkChange(plan.change), `update ${cfg.name}`);
  }
  if (plan.op !== "none") link = await rtnl.link(cfg.name);
  if (!link) throw new Error(`${cfg.name} missing after creation`);

  const addrs = (await rtnl.addresses()).filter((a) => a.index === link.index);
  const ap = planAddresses(cfg.addresses, addrs);
  for (const cidr of ap.del) {
    changes.push(`remove address ${cidr} from ${cfg.name}`);
    await rtnl.request(encodeAddress("del", { index: link.index, cidr }), `remove ${cidr}`);
  }
  for (const cidr of ap.add) {
    changes.push(`add address ${cidr} to ${cfg.name}`);
    // an IPv6 VTEP must answer at once: duplicate detection would hold it tentative for a second
    const flags = cidr.includes(":") ? IFA_F_NODAD : 0;
    await rtnl.request(encodeAddress("set", { index: link.index, cidr, flags }), `add ${cidr}`);
  }
  return { link, underlay, created, changes };
}
