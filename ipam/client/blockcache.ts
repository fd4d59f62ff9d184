import type { IPAMBlock } from "../../api/index.js";
import type { Informer } from "../../runtime/index.js";

/**
 * resourceVersion is opaque to callers of the Store, but both backends hand out integers
 * (apiserver resource versions, etcd mod revisions). Knowing which copy is newer only saves a
 * wasted compare-and-swap; correctness never depends on it, so anything unparsable counts as newer.
 */
function newer(candidate: IPAMBlock, current: IPAMBlock | undefined): boolean {
  if (!current) return true;
  const a = candidate.metadata.resourceVersion ?? "";
  const b = current.metadata.resourceVersion ?? "";
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return true;
  return BigInt(a) >= BigInt(b);
}

/**
 * The blocks an allocator needs at hand: every block by name, the blocks of each node, where each
 * handle holds addresses and which CIDRs are claimed. Fed by a block informer and by the
 * allocator's own writes (which land here before their watch events do), newest copy wins.
 */
export class BlockCache {
  private readonly byName = new Map<string, IPAMBlock>();
  private readonly byNode = new Map<string, Set<string>>();
  private readonly byHandle = new Map<string, Set<string>>();
  private readonly affinityByCidr = new Map<string, string>();
  /** Called after every change, with the block before and after (undefined: absent). */
  onChange: ((before: IPAMBlock | undefined, after: IPAMBlock | undefined) => void) | undefined;

  attach(informer: Informer<IPAMBlock>): this {
    informer.on({
      add: (b) => this.upsert(b),
      update: (_o, b) => this.upsert(b),
      delete: (b) => this.remove(b.metadata.name, b),
    });
    for (const b of informer.list()) this.upsert(b);
    return this;
  }

  get(name: string): IPAMBlock | undefined {
    return this.byName.get(name);
  }

  all(): IterableIterator<IPAMBlock> {
    return this.byName.values();
  }

  get size(): number {
    return this.byName.size;
  }

  ofNode(node: string): IPAMBlock[] {
    return [...(this.byNode.get(node) ?? [])].map((n) => this.byName.get(n)!).filter(Boolean);
  }

  withHandle(handle: string): IPAMBlock[] {
    return [...(this.byHandle.get(handle) ?? [])].map((n) => this.byName.get(n)!).filter(Boolean);
  }

  /** CIDR -> affinity of every known block (what the planner must not claim again). */
  claimed(): ReadonlyMap<string, string> {
    return this.affinityByCidr;
  }

  /** Keeps `obj` unless the cache already has a newer copy. */
  upsert(obj: IPAMBlock): void {
    const name = obj.metadata.name;
    const before = this.byName.get(name);
    if (before === obj || !newer(obj, before)) return;
    if (before) this.unindex(before);
    this.byName.set(name, obj);
    this.index(obj);
    this.onChange?.(before, obj);
  }

  /** Drops the block; with `seen`, only if the cache holds no newer copy than that one. */
  remove(name: string, seen?: IPAMBlock): void {
    const before = this.byName.get(name);
    if (!before) return;
    if (seen && before !== seen && !newer(seen, before)) return;
    this.unindex(before);
    this.byName.delete(name);
    this.onChange?.(before, undefined);
  }

  private index(b: IPAMBlock): void {
    const name = b.metadata.name;
    this.affinityByCidr.set(b.spec.cidr, b.spec.affinity);
    if (b.spec.affinity) add(this.byNode, b.spec.affinity, name);
    for (const a of b.spec.allocations) add(this.byHandle, a.handle, name);
  }

  private unindex(b: IPAMBlock): void {
    const name = b.metadata.name;
    this.affinityByCidr.delete(b.spec.cidr);
    if (b.spec.affinity) del(this.byNode, b.spec.affinity, name);
    for (const a of b.spec.allocations) del(this.byHandle, a.handle, name);
  }
}

function add(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) {
    s = new Set();
    m.set(k, s);
  }
  s.add(v);
}

function del(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}
