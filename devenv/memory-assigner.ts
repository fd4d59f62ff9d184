import { type AddressAssigner, AddressesExhausted, type AssignRequest, type Family } from "../agent/index.js";
import { canonicalIP } from "../netlink/index.js";

function v4ToInt(ip: string): number {
  return ip.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}
function intToV4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}
function v6ToBig(ip: string): bigint {
  const [head, tail] = ip.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}
function bigToV6(n: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  return canonicalIP(groups.join(":"));
}

interface Range {
  next(skip: (ip: string) => boolean): string | undefined;
}

function rangeOf(cidr: string): Range {
  const [base, lenText] = cidr.split("/") as [string, string];
  const len = Number(lenText);
  if (base.includes(":")) {
    const start = v6ToBig(base);
    const size = 1n << BigInt(128 - len);
    return {
      next(skip) {
        // the subnet-router anycast address (offset 0) is skipped, as the kernel reserves it
        for (let i = 1n; i < size && i < 1_000_000n; i++) {
          const ip = bigToV6(start + i);
          if (!skip(ip)) return ip;
        }
        return undefined;
      },
    };
  }
  const start = v4ToInt(base);
  const size = 2 ** (32 - len);
  return {
    next(skip) {
      // network and broadcast addresses stay unused, as Calico's IPAM does by default
      for (let i = 1; i < size - 1; i++) {
        const ip = intToV4(start + i);
        if (!skip(ip)) return ip;
      }
      return undefined;
    },
  };
}

/**
 * In-memory assigner for tests of the plugin protocol and the wiring, and for the benchmark.
 * Lowest free address first; a released address is reused.
 */
export class InMemoryAssigner implements AddressAssigner {
  private readonly byHandle = new Map<string, { ips: string[]; node: string }>();
  private readonly used = new Set<string>();
  private readonly ranges: Partial<Record<Family, Range>>;

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
