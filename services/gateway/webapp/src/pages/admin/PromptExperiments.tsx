import { useState, type FormEvent } from "react";
import { invalidFields, type FieldError } from "../../api/client";
import { admin } from "../../api/endpoints";
import type { Experiment, ExperimentReport, PromptTemplate } from "../../api/types";
import { DataTable } from "../../components/DataTable";
import { ErrorBox } from "../../components/ErrorBox";
import { formatDate, formatNumber, formatPercent } from "../../lib/format";
import { patchAt, removeAt } from "../../lib/lists";
import { useAction } from "../../lib/useAction";
import { cost, latency, RatingCell } from "./metrics";
import { sortedVersions, VersionSelect } from "./PromptVersions";

// A/B experiments on a label: the list, a report, stopping one (and promoting a version), starting one.

export function Experiments({ template: t, onDone }: { template: PromptTemplate; onDone: () => void }) {
  const [report, setReport] = useState<{ id: string; data: ExperimentReport } | null>(null);
  const { error, run } = useAction();
  const running = t.experiments.filter((e) => e.status === "running");

  async function show(id: string) {
    await run(async () => setReport({ id, data: await admin.experiment(id) }));
  }

  return (
    <section className="panel" aria-labelledby="experiments-title">
      <h2 id="experiments-title">Experiments</h2>
      {t.experiments.length === 0 ? (
        <p className="muted">No experiments yet.</p>
      ) : (
        <DataTable
          columns={["Label", "Arms (version: weight)", "Status", "Started", "Note", <span className="sr-only">Actions</span>]}
          data-testid="experiments"
        >
          {t.experiments.map((e) => (
            <tr key={e.experiment_id} data-testid="experiment">
              <td>{e.label}</td>
              <td>{e.arms.map((a) => `v${a.version}: ${a.weight}`).join(", ")}</td>
              <td>
                <span className={`badge ${e.status === "running" ? "status-generating" : ""}`}>{e.status}</span>
                {e.stopped_at && <div className="small muted">{formatDate(e.stopped_at)}</div>}
              </td>
              <td>{formatDate(e.started_at)}</td>
              <td>{e.note}</td>
              <td>
                <button type="button" className="button ghost small" onClick={() => void show(e.experiment_id)} data-testid="experiment-report">
                  Report
                </button>
                {e.status === "running" && <StopExperiment experiment={e} onDone={onDone} />}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      <ErrorBox error={error} />
      {report && <ReportView report={report.data} />}
      {running.length === 0 ? (
        <StartExperiment template={t} onDone={onDone} />
      ) : (
        <p className="small muted">Stop the running experiment to start another one.</p>
      )}
    </section>
  );
}

function StopExperiment({ experiment, onDone }: { experiment: Experiment; onDone: () => void }) {
  const [promote, setPromote] = useState<number | "">("");
  const { busy, error, run } = useAction();
  async function stop(event: FormEvent) {
    event.preventDefault();
    await run(async () => {
      await admin.stopExperiment(experiment.experiment_id, promote === "" ? null : promote);
      onDone();
    });
  }
  return (
    <form className="inline-form" onSubmit={stop}>
      <label className="inline-field">
        <span className="sr-only">Promote</span>
        <select value={promote} onChange={(e) => setPromote(e.target.value ? Number(e.target.value) : "")} data-testid="promote">
          <option value="">Keep the label as it was</option>
          {experiment.arms.map((a) => (
            <option key={a.version} value={a.version}>
              Promote v{a.version}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" className="button secondary small" disabled={busy} data-testid="stop-experiment">
        Stop
      </button>
      <ErrorBox error={error} />
    </form>
  );
}

interface Arm {
  version: number;
  weight: number;
}

function armProblems(arms: Arm[]): FieldError[] {
  const problems: FieldError[] = [];
  if (arms.length < 2) problems.push({ field: "arms", message: "an experiment needs at least two arms" });
  if (new Set(arms.map((a) => a.version)).size !== arms.length) {
    problems.push({ field: "arms", message: "each arm must use a different version" });
  }
  arms.forEach((a, i) => {
    if (!(a.weight > 0 && a.weight <= 1000)) {
      problems.push({ field: `arms[${i}].weight`, message: "must be more than 0 and at most 1000" });
    }
  });
  return problems;
}

function StartExperiment({ template: t, onDone }: { template: PromptTemplate; onDone: () => void }) {
  const versions = sortedVersions(t);
  const [label, setLabel] = useState("production");
  const [arms, setArms] = useState<Arm[]>(() => [
    { version: t.labels?.production ?? versions[1]?.version ?? versions[0]?.version ?? 1, weight: 50 },
    { version: versions[0]?.version ?? 1, weight: 50 },
  ]);
  const [note, setNote] = useState("");
  const { busy, error, setError, run } = useAction();

  const update = (i: number, patch: Partial<Arm>) => setArms((list) => patchAt(list, i, patch));

  async function submit(event?: FormEvent) {
    event?.preventDefault();
    const problems = armProblems(arms);
    if (problems.length) {
      setError(invalidFields(problems));
      return;
    }
    await run(async () => {
      await admin.startExperiment(t.name, { label: label.trim(), arms, note: note.trim() });
      onDone();
    });
  }

  return (
    <form className="form experiment-form" onSubmit={submit} data-testid="experiment-form">
      <h3>Start an experiment</h3>
      <p className="small muted">Split a label between versions; each course keeps the version it was given.</p>
      <label className="inline-field">
        <span>Label</span>
        <input value={label} onChange={(e) => setLabel(e.target.value)} data-testid="experiment-label" />
      </label>
      {arms.map((arm, i) => (
        <div key={i} className="inline-form">
          <VersionSelect
            template={t}
            value={arm.version}
            onChange={(version) => update(i, { version })}
            testId={`arm-version-${i}`}
            label={`Arm ${i + 1}: version`}
          />
          <label className="inline-field">
            <span>weight</span>
            <input
              type="number"
              min="0"
              max="1000"
              step="any"
              value={arm.weight}
              onChange={(e) => update(i, { weight: Number(e.target.value) })}
              data-testid={`arm-weight-${i}`}
            />
          </label>
          <button
            type="button"
            className="button ghost small"
            onClick={() => setArms((list) => removeAt(list, i))}
            disabled={arms.length <= 2}
          >
            Remove
          </button>
        </div>
      ))}
      <button
        type="button"
        className="button ghost small"
        onClick={() => setArms((list) => [...list, { version: versions[0]?.version ?? 1, weight: 50 }])}
        disabled={arms.length >= 10}
      >
        Add an arm
      </button>
      <label className="field">
        <span>Note (optional)</span>
        <input value={note} onChange={(e) => setNote(e.target.value)} maxLength={2000} />
      </label>
      <ErrorBox error={error} onRetry={() => void submit()} />
      <button type="submit" className="button primary" disabled={busy} data-testid="start-experiment">
        {busy ? "Starting…" : "Start the experiment"}
      </button>
    </form>
  );
}

function pValue(p: number | null | undefined): string {
  if (p === null || p === undefined) return "–";
  return p < 0.001 ? "< 0.001" : p.toFixed(3);
}

function ReportView({ report }: { report: ExperimentReport }) {
  return (
    <div className="report" data-testid="experiment-result">
      <h3>Report</h3>
      <DataTable
        columns={["Version", "Weight", "Calls", "Errors", "p50 latency", "Output tokens", "Cost / call", "Quality", "Rating"]}
        className="table compact"
      >
        {report.arms.map((a) => (
          <tr key={a.version}>
            <td>v{a.version}</td>
            <td>{a.weight}</td>
            <td>{formatNumber(a.calls)}</td>
            <td>{formatPercent(a.error_rate)}</td>
            <td>{latency(a.p50_latency_ms)}</td>
            <td>{formatNumber(a.mean_output_tokens)}</td>
            <td>{cost(a.mean_cost_usd)}</td>
            <td>{formatNumber(a.mean_quality, 2)}</td>
            <RatingCell mean={a.mean_rating} count={a.ratings} />
          </tr>
        ))}
      </DataTable>
      {report.comparisons.length > 0 && (
        <DataTable columns={["Versions", "p (errors)", "p (quality)", "p (rating)", "Verdict"]} className="table compact" wrap={false}>
          {report.comparisons.map((c, i) => (
            <tr key={i}>
              <td>{c.versions.map((v) => `v${v}`).join(" vs ")}</td>
              {(["error_rate", "quality", "rating"] as const).map((k) => (
                <td key={k} className={c.significant?.[k] ? "significant" : undefined}>
                  {pValue(c.p_values?.[k])}
                  {c.significant?.[k] ? " *" : ""}
                </td>
              ))}
              <td>{c.enough_data ? "enough data" : "not enough data yet"}</td>
            </tr>
          ))}
        </DataTable>
      )}
      {report.note && <p className="small muted">{report.note}</p>}
    </div>
  );
}
