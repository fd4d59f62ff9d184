/**
 * The text of an IPv6 address from its eight 16-bit groups, as RFC 5952 prescribes (and iproute2
 * prints): lowercase hex, no leading zeros, the longest run of two or more zero groups (the first
 * on a tie) written as `::`. IPAM, BGP and netlink code all compare addresses as this text.
 */
export function formatV6Groups(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}
