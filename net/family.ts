/**
 * Address families. Code works with the numbers 4 and 6; configuration (CNI network config, the
 * assigner's requests) spells them "ipv4" and "ipv6", and people read "IPv4" and "IPv6".
 */
export type Family = 4 | 6;

/** The configuration spelling of a family (CNI `families`). */
export type FamilyName = "ipv4" | "ipv6";

export const FAMILIES: readonly Family[] = [4, 6];

export const FAMILY_BITS: Readonly<Record<Family, number>> = { 4: 32, 6: 128 };

export function isFamilyName(v: unknown): v is FamilyName {
  return v === "ipv4" || v === "ipv6";
}

export function familyFromName(name: FamilyName): Family {
  return name === "ipv6" ? 6 : 4;
}

export function familyToName(f: Family): FamilyName {
  return f === 6 ? "ipv6" : "ipv4";
}

/** "IPv4" or "IPv6", for messages. */
export function familyLabel(f: Family): string {
  return f === 4 ? "IPv4" : "IPv6";
}

/**
 * The family of an address or CIDR that has already been validated: only IPv6 text has a colon.
 * Cheap, and meant for values the API or the IPAM has checked; parse untrusted text instead.
 */
export function familyOfValid(text: string): Family {
  return text.includes(":") ? 6 : 4;
}
