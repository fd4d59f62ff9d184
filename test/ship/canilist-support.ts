/**
 * `kubectl auth can-i --list` as data. kubectl 1.32 prints only a table (no -o json), whose
 * columns are as wide as their longest cell, so cells are cut at the header's column offsets.
 * Pure.
 */

export interface RuleRow {
  resources: string;
  nonResourceURLs: string;
  resourceNames: string;
  verbs: string;
}

const HEADERS = ["Resources", "Non-Resource URLs", "Resource Names", "Verbs"] as const;

export function parseCanIList(text: string): RuleRow[] {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const header = lines.shift() ?? "";
  const starts = HEADERS.map((h) => header.indexOf(h));
  if (starts.some((s) => s < 0)) throw new Error(`not kubectl auth can-i --list output:\n${header}`);
  return lines.map((line) => {
    const cell = (i: number) =>
      line.slice(starts[i], i + 1 < starts.length ? starts[i + 1] : undefined).trim();
    return { resources: cell(0), nonResourceURLs: cell(1), resourceNames: cell(2), verbs: cell(3) };
  });
}

/**
 * A stable text of the rules: names that differ per test run replaced by placeholders, duplicate
 * rows dropped (kubectl prints one per granting rule), sorted, verbs in a fixed order.
 */
export function normalizeRules(rows: RuleRow[], replace: Array<[string, string]>): string {
  const fix = (s: string) => replace.reduce((acc, [from, to]) => acc.split(from).join(to), s);
  const verbs = (v: string) =>
    `[${v
      .replace(/^\[|\]$/g, "")
      .split(/\s+/)
      .filter(Boolean)
      .sort()
      .join(" ")}]`;
  const out = new Set(
    rows.map((r) =>
      [r.resources || "-", r.nonResourceURLs, r.resourceNames, verbs(r.verbs)].map(fix).join("  "),
    ),
  );
  return `${[...out].sort().join("\n")}\n`;
}
