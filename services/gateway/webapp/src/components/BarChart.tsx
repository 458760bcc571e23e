export interface Bar {
  label: string;
  value: number | null;
}

interface Props {
  title: string;
  bars: Bar[];
  format?: (value: number) => string;
  "data-testid"?: string;
}

/** A horizontal SVG bar chart (one bar per row), with its numbers as text too. */
export function BarChart({ title, bars, format = (v) => String(v), ...rest }: Props) {
  const rowHeight = 28;
  const labelWidth = 150;
  const width = 520;
  const valueWidth = 90;
  const plot = width - labelWidth - valueWidth;
  const max = Math.max(0, ...bars.map((b) => b.value ?? 0));
  const height = Math.max(1, bars.length) * rowHeight + 8;
  return (
    <figure className="chart" data-testid={rest["data-testid"]}>
      <figcaption>{title}</figcaption>
      {bars.length === 0 ? (
        <p className="muted">No data yet.</p>
      ) : (
        <svg
          viewBox={`0 0 ${width} ${height}`}
          width="100%"
          role="img"
          aria-label={`${title}: ${bars
            .map((b) => `${b.label} ${b.value === null ? "no data" : format(b.value)}`)
            .join(", ")}`}
        >
          {bars.map((bar, i) => {
            const y = i * rowHeight + 4;
            const w = bar.value && max > 0 ? Math.max(2, (bar.value / max) * plot) : 0;
            return (
              <g key={`${bar.label}-${i}`}>
                <text x={labelWidth - 8} y={y + 17} textAnchor="end" className="chart-label">
                  {bar.label.length > 22 ? `${bar.label.slice(0, 21)}…` : bar.label}
                </text>
                <rect x={labelWidth} y={y + 4} width={w} height={rowHeight - 10} rx={3} className="chart-bar" />
                <text x={labelWidth + w + 6} y={y + 17} className="chart-value">
                  {bar.value === null ? "–" : format(bar.value)}
                </text>
              </g>
            );
          })}
        </svg>
      )}
    </figure>
  );
}
