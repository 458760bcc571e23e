import { formatNumber, formatUsd } from "../../lib/format";

// Cells shared by the experiment report and the analytics table.

/** A latency in milliseconds, or "–" when there is none. */
export function latency(ms: number | null): string {
  return ms === null ? "–" : `${formatNumber(ms)} ms`;
}

/** An amount in US dollars, or "–" when there is none. */
export function cost(usd: number | null): string {
  return usd === null ? "–" : formatUsd(usd);
}

export function RatingCell({ mean, count }: { mean: number | null; count: number }) {
  return (
    <td>
      {formatNumber(mean, 2)} <span className="muted small">({count})</span>
    </td>
  );
}
