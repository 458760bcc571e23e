import { admin } from "../../api/endpoints";
import type { AnalyticsRow } from "../../api/types";
import { BarChart } from "../../components/BarChart";
import { DataTable } from "../../components/DataTable";
import { ErrorBox } from "../../components/ErrorBox";
import { Loading } from "../../components/Loading";
import { formatNumber, formatPercent, formatUsd } from "../../lib/format";
import { useApi } from "../../lib/useApi";
import { cost, latency, RatingCell } from "./metrics";

// What a template's calls cost and how they went, per version and model.

const CHARTS: { title: string; value: (r: AnalyticsRow) => number | null; format: (v: number) => string; testId: string }[] = [
  { title: "Calls", value: (r) => r.calls, format: (v) => formatNumber(v), testId: "chart-calls" },
  { title: "p95 latency", value: (r) => r.p95_latency_ms, format: (v) => `${formatNumber(v)} ms`, testId: "chart-latency" },
  { title: "Total cost", value: (r) => r.total_cost_usd, format: (v) => formatUsd(v), testId: "chart-cost" },
  { title: "Mean quality", value: (r) => r.mean_quality, format: (v) => formatNumber(v, 2), testId: "chart-quality" },
];

const COLUMNS = ["Version", "Model", "Calls", "Errors", "p50", "p95", "Tokens in / out", "Cost / call", "Total cost", "Quality", "Rating"];

export function PromptAnalytics({ name, refresh }: { name: string; refresh: number }) {
  const { data, error, loading, reload } = useApi((signal) => admin.analytics(name, signal), [name, refresh]);
  // one template's rows (tolerant of a server that also matches other names)
  const rows: AnalyticsRow[] = (data ?? []).filter((r) => !r.prompt_name || r.prompt_name === name);
  const label = (r: AnalyticsRow) => `v${r.prompt_version} ${r.model}`;
  return (
    <section className="panel" aria-labelledby="analytics-title" data-testid="analytics">
      <h2 id="analytics-title">Analytics</h2>
      <ErrorBox error={error} onRetry={reload} />
      {loading && !data && <Loading label="Loading analytics…" />}
      {data && rows.length === 0 && <p className="muted">No calls logged for this template yet.</p>}
      {rows.length > 0 && (
        <>
          <div className="charts">
            {CHARTS.map((chart) => (
              <BarChart
                key={chart.testId}
                title={chart.title}
                bars={rows.map((r) => ({ label: label(r), value: chart.value(r) }))}
                format={chart.format}
                data-testid={chart.testId}
              />
            ))}
          </div>
          <DataTable columns={COLUMNS} className="table compact">
            {rows.map((r) => (
              <tr key={`${r.prompt_version}-${r.model}`}>
                <td>v{r.prompt_version}</td>
                <td>{r.model}</td>
                <td>{formatNumber(r.calls)}</td>
                <td>{formatPercent(r.error_rate)}</td>
                <td>{latency(r.p50_latency_ms)}</td>
                <td>{latency(r.p95_latency_ms)}</td>
                <td>
                  {formatNumber(r.mean_input_tokens)} / {formatNumber(r.mean_output_tokens)}
                </td>
                <td>{cost(r.mean_cost_usd)}</td>
                <td>{cost(r.total_cost_usd)}</td>
                <td>{formatNumber(r.mean_quality, 2)}</td>
                <RatingCell mean={r.mean_rating} count={r.ratings} />
              </tr>
            ))}
          </DataTable>
        </>
      )}
    </section>
  );
}
