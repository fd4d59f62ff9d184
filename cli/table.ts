/** A plain aligned text table, kubectl style: upper-case headers, two spaces between columns. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function percent(used: number | bigint, total: number | bigint): string {
  const t = Number(total);
  if (t === 0) return "-";
  const p = (Number(used) * 100) / t;
  return p > 0 && p < 0.1 ? "<0.1%" : `${p.toFixed(1)}%`;
}
