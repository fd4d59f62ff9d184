/** Latency summaries for the CNI benchmark (pure). */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
}

/** Nearest-rank percentile of an unsorted sample. */
export function percentile(sample: number[], p: number): number {
  if (sample.length === 0) return Number.NaN;
  const sorted = [...sample].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function summarize(sample: number[]): Summary {
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    n: sample.length,
    p50: r(percentile(sample, 50)),
    p99: r(percentile(sample, 99)),
    mean: r(sample.reduce((a, b) => a + b, 0) / Math.max(1, sample.length)),
  };
}
