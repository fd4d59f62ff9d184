import { type AddressAssigner, AddressesExhausted, type AssignRequest } from "../agent/index.js";
import { cidrLast, type FamilyName, formatIP, parseCidr } from "../net/index.js";

interface Range {
  next(skip: (ip: string) => boolean): string | undefined;
}

/**
 * Candidates in address order: IPv4 leaves the network and broadcast addresses unused, as Calico's
 * IPAM does by default; IPv6 skips the subnet-router anycast address (offset 0), which the kernel
 * reserves, and looks at no more than a million addresses.
 */
function rangeOf(cidr: string): Range {
  const c = parseCidr(cidr);
  const first = c.base + 1n;
  const last = c.family === 4 ? cidrLast(c) - 1n : min(cidrLast(c), c.base + 999_999n);
  return {
    next(skip) {
      for (let v = first; v <= last; v++) {
        const ip = formatIP(c.family, v);
        if (!skip(ip)) return ip;
      }
      return undefined;
    },
  };
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);

/**
 * In-memory assigner for tests of the plugin protocol and the wiring, and for the benchmark.
 * Lowest free address first; a released address is reused.
 */
export class InMemoryAssigner implements AddressAssigner {
  private readonly byHandle = new Map<string, { ips: string[]; node: string }>();
  private readonly used = new Set<string>();
  private readonly ranges: Partial<Record<FamilyName, Range>>;

  constructor(pools: { ipv4?: string; ipv6?: string }) {
    this.ranges = {
      ...(pools.ipv4 ? { ipv4: rangeOf(pools.ipv4) } : {}),
      ...(pools.ipv6 ? { ipv6: rangeOf(pools.ipv6) } : {}),
    };
  }

  async assign(req: AssignRequest): Promise<{ ips: string[] }> {
    const held = this.byHandle.get(req.handle);
    if (held) return { ips: [...held.ips] };
    const ips: string[] = [];
    for (const family of req.families) {
      const range = this.ranges[family];
      if (!range) throw new AddressesExhausted(`no ${family} pool configured`);
      const ip = range.next((c) => this.used.has(c));
      if (!ip) {
        for (const taken of ips) this.used.delete(taken);
        throw new AddressesExhausted(`the ${family} pool is exhausted`);
      }
      this.used.add(ip);
      ips.push(ip);
    }
    this.byHandle.set(req.handle, { ips, node: req.node });
    return { ips: [...ips] };
  }

  async release(handle: string): Promise<void> {
    const held = this.byHandle.get(handle);
    if (!held) return;
    for (const ip of held.ips) this.used.delete(ip);
    this.byHandle.delete(handle);
  }

  async lookup(handle: string): Promise<{ ips: string[] } | undefined> {
    const held = this.byHandle.get(handle);
    return held ? { ips: [...held.ips] } : undefined;
  }

  async handles(node: string): Promise<string[]> {
    return [...this.byHandle].filter(([, v]) => v.node === node).map(([k]) => k);
  }
}
