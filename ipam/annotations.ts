import { ANNOTATIONS, PATTERNS } from "../api/index.js";
import { type Family, familyLabel, formatIP, tryParseCidr, tryParseIP } from "../net/index.js";
import { IpamError } from "./errors.js";

/**
 * What a pod asks of the IPAM through annotations, read from the pod and its namespace:
 * `weft.dev/ipv4pools` / `weft.dev/ipv6pools` (a JSON list of pool names; the pod's annotation
 * wins over its namespace's, family by family) and `weft.dev/ip-addresses` (a JSON list of fixed
 * addresses, at most one per family; read on pods only). Pure: the caller reads the objects.
 */
export interface PoolChoice {
  /** Pool names, in the order written, without repeats. */
  names: string[];
  /** Where the choice was read, for messages: `weft.dev/ipv4pools of namespace web`. */
  source: string;
  /**
   * Whether the pod named the pools itself. A pod's fixed address must lie in the pools the pod
   * names; its namespace's pools do not bind it (the pod wins).
   */
  onPod?: boolean;
}

export interface PodIpamRequest {
  pools: Partial<Record<Family, PoolChoice>>;
  /** Fixed addresses (canonical text) by family. */
  addresses: Partial<Record<Family, string>>;
  /** Where the fixed addresses were read, for messages. */
  addressSource?: string;
}

export interface AnnotatedObject {
  name: string;
  annotations?: Record<string, string> | undefined;
}

export const POOL_ANNOTATIONS: Readonly<Record<Family, string>> = {
  4: ANNOTATIONS.ipv4Pools,
  6: ANNOTATIONS.ipv6Pools,
};

const POOL_NAME = new RegExp(PATTERNS.dnsSubdomain);

function invalid(message: string): IpamError {
  return new IpamError("InvalidAnnotation", message);
}

/** A JSON list of non-empty strings, or an error naming the annotation. */
function stringList(text: string, where: string, example: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw invalid(`${where} is not JSON (${(e as Error).message}): write a JSON list such as ${example}`);
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw invalid(`${where} must be a JSON list of strings such as ${example}, not ${JSON.stringify(value)}`);
  }
  if (value.length === 0)
    throw invalid(`${where} is an empty list: name at least one, or remove the annotation`);
  const blank = value.findIndex((v) => v.trim() === "");
  if (blank >= 0) throw invalid(`${where}: entry ${blank} is empty`);
  return value;
}

function poolNames(text: string, family: Family, where: string): string[] {
  const names: string[] = [];
  for (const raw of stringList(text, where, '["pool-a"]')) {
    const name = raw.trim();
    const ip = tryParseIP(name);
    const net = ip ? undefined : tryParseCidr(name, false);
    const f = ip?.family ?? net?.family;
    if (f !== undefined) {
      const what = `${JSON.stringify(name)} is an ${familyLabel(f)} ${ip ? "address" : "network"}, not a pool name`;
      throw invalid(
        f === family
          ? `${where}: ${what}; name the pool that holds it (kubectl get ippools)`
          : `${where}: ${what}; ${POOL_ANNOTATIONS[family]} names ${familyLabel(family)} pools (${familyLabel(f)} pools go in ${POOL_ANNOTATIONS[f]})`,
      );
    }
    if (name.length > 253 || !POOL_NAME.test(name)) {
      throw invalid(
        `${where}: ${JSON.stringify(name)} is not a valid pool name (lower case, digits, '-' and '.')`,
      );
    }
    if (!names.includes(name)) names.push(name);
  }
  return names;
}

function fixedAddresses(text: string, where: string): Partial<Record<Family, string>> {
  const out: Partial<Record<Family, string>> = {};
  for (const raw of stringList(text, where, '["10.244.1.10"] or ["10.244.1.10", "fd00:10:244::10"]')) {
    const entry = raw.trim();
    const ip = tryParseIP(entry);
    if (!ip) {
      const net = tryParseCidr(entry, false);
      throw invalid(
        net
          ? `${where}: ${JSON.stringify(entry)} is a network; give one address per family, without a prefix length`
          : `${where}: ${JSON.stringify(entry)} is not an IPv4 or IPv6 address`,
      );
    }
    const text = formatIP(ip.family, ip.value);
    const other = out[ip.family];
    if (other !== undefined && other !== text) {
      throw invalid(
        `${where} names two ${familyLabel(ip.family)} addresses (${other}, ${text}): a pod has one address per family`,
      );
    }
    out[ip.family] = text;
  }
  return out;
}

/**
 * Reads the IPAM annotations of a pod and of its namespace. Throws IpamError InvalidAnnotation
 * naming the annotation and the object when one cannot be used; a namespace annotation the pod
 * overrides is not read at all.
 */
export function podIpamRequest(input: {
  pod: AnnotatedObject & { namespace: string };
  namespace?: AnnotatedObject | undefined;
}): PodIpamRequest {
  const { pod, namespace } = input;
  const podWhere = (a: string) => `annotation ${a} of pod ${pod.namespace}/${pod.name}`;
  const nsWhere = (a: string) => `annotation ${a} of namespace ${namespace?.name ?? pod.namespace}`;
  const req: PodIpamRequest = { pools: {}, addresses: {} };
  for (const family of [4, 6] as const) {
    const key = POOL_ANNOTATIONS[family];
    const onPod = pod.annotations?.[key];
    const onNs = namespace?.annotations?.[key];
    if (onPod !== undefined) {
      req.pools[family] = {
        names: poolNames(onPod, family, podWhere(key)),
        source: podWhere(key),
        onPod: true,
      };
    } else if (onNs !== undefined) {
      req.pools[family] = { names: poolNames(onNs, family, nsWhere(key)), source: nsWhere(key) };
    }
  }
  const fixed = pod.annotations?.[ANNOTATIONS.ipAddresses];
  if (fixed !== undefined) {
    const where = podWhere(ANNOTATIONS.ipAddresses);
    req.addresses = fixedAddresses(fixed, where);
    req.addressSource = where;
  }
  return req;
}

/** Whether the request asks for anything beyond the defaults. */
export function isDefaultRequest(req: PodIpamRequest): boolean {
  return (
    req.pools[4] === undefined &&
    req.pools[6] === undefined &&
    req.addresses[4] === undefined &&
    req.addresses[6] === undefined
  );
}
