// Summaries of timing samples for every benchmark script: nearest-rank percentiles, the median
// of an even count as the mean of the middle two.
export interface Summary {
  readonly n: number;
  readonly mean: number;
  readonly median: number;
  readonly p90: number;
  readonly p95: number;
  readonly p99: number;
  readonly min: number;
  readonly max: number;
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  const rank = (q: number) => s[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  const median = n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  return { n, mean: s.reduce((a, b) => a + b, 0) / n, median, p90: rank(0.9), p95: rank(0.95), p99: rank(0.99), min: s[0]!, max: s[n - 1]! };
}
