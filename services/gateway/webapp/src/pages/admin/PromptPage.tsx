import { useState, type FormEvent } from "react";
import { Link, useParams } from "react-router-dom";
import { ApiError, toApiError } from "../../api/client";
import { admin } from "../../api/endpoints";
import type {
  AnalyticsRow,
  Experiment,
  ExperimentReport,
  PromptDiff,
  PromptMessage,
  PromptTemplate,
} from "../../api/types";
import { BarChart } from "../../components/BarChart";
import { ErrorBox } from "../../components/ErrorBox";
import { Loading } from "../../components/Loading";
import { formatDate, formatNumber, formatPercent, formatUsd } from "../../lib/format";
import { useApi } from "../../lib/useApi";
import { useTitle } from "../../lib/useTitle";
import { LabelChips } from "./PromptsPage";

export function PromptPage() {
  const { name = "" } = useParams();
  useTitle(`Prompt ${name}`);
  const template = useApi((signal) => admin.prompt(name, signal), [name]);
  const [analyticsKey, setAnalyticsKey] = useState(0);
  const t = template.data;

  return (
    <section className="admin-page">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/admin/prompts">Prompt templates</Link>
      </nav>
      <h1>
        <code>{name}</code>
      </h1>
      <ErrorBox error={template.error} onRetry={template.reload} />
      {template.loading && !t && <Loading label="Loading the template…" />}
      {t && (
        <>
          <p className="muted">
            Task <strong>{t.task}</strong>
            {t.description ? ` · ${t.description}` : ""}
          </p>
          <p>
            Labels: <LabelChips labels={t.labels} />
          </p>
          <Versions template={t} />
          <DiffView template={t} />
          <LabelForm template={t} onDone={template.reload} />
          <NewVersionForm template={t} onDone={template.reload} />
          <Experiments
            template={t}
            onDone={() => {
              template.reload();
              setAnalyticsKey((k) => k + 1);
            }}
          />
          <Analytics name={name} refresh={analyticsKey} />
        </>
      )}
    </section>
  );
}

function labelsOf(t: PromptTemplate, version: number): string[] {
  return Object.entries(t.labels ?? {})
    .filter(([, v]) => v === version)
    .map(([label]) => label);
}

function sortedVersions(t: PromptTemplate) {
  return [...t.versions].sort((a, b) => b.version - a.version);
}

function Versions({ template: t }: { template: PromptTemplate }) {
  return (
    <section className="panel" aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <div className="table-wrap">
        <table className="table" data-testid="versions">
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Change note</th>
              <th scope="col">By</th>
              <th scope="col">Created</th>
              <th scope="col">Labels</th>
            </tr>
          </thead>
          <tbody>
            {sortedVersions(t).map((v) => (
              <tr key={v.version} data-testid={`version-${v.version}`}>
                <td>
                  <details>
                    <summary>v{v.version}</summary>
                    <div className="version-detail">
                      {v.messages.map((m, i) => (
                        <div key={i} className="prompt-message">
                          <span className="chip">{m.role}</span>
                          <pre>{m.content}</pre>
                        </div>
                      ))}
                      {Object.keys(v.variables ?? {}).length > 0 && (
                        <>
                          <h4>Variables</h4>
                          <ul>
                            {Object.entries(v.variables).map(([key, spec]) => (
                              <li key={key}>
                                <code>{key}</code>
                                {spec?.type ? ` (${spec.type})` : ""}
                                {spec?.description ? `: ${spec.description}` : ""}
                              </li>
                            ))}
                          </ul>
                        </>
                      )}
                      <h4>Model</h4>
                      <pre>{JSON.stringify(v.model ?? {}, null, 2)}</pre>
                    </div>
                  </details>
                </td>
                <td>{v.change_note}</td>
                <td>{v.created_by ?? "–"}</td>
                <td>{formatDate(v.created_at)}</td>
                <td>
                  {labelsOf(t, v.version).map((l) => (
                    <span key={l} className="chip">
                      {l}
                    </span>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function VersionSelect({
  template,
  value,
  onChange,
  testId,
  label,
}: {
  template: PromptTemplate;
  value: number;
  onChange: (v: number) => void;
  testId: string;
  label: string;
}) {
  return (
    <label className="inline-field">
      <span>{label}</span>
      <select value={value} onChange={(e) => onChange(Number(e.target.value))} data-testid={testId}>
        {sortedVersions(template).map((v) => (
          <option key={v.version} value={v.version}>
            v{v.version}
          </option>
        ))}
      </select>
    </label>
  );
}

function DiffView({ template: t }: { template: PromptTemplate }) {
  const versions = sortedVersions(t);
  const latest = versions[0]?.version ?? 1;
  const [a, setA] = useState(versions[1]?.version ?? latest);
  const [b, setB] = useState(latest);
  const [diff, setDiff] = useState<PromptDiff | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  async function compare(event?: FormEvent) {
    event?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setDiff(await admin.diff(t.name, a, b));
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="panel" aria-labelledby="diff-title">
      <h2 id="diff-title">Compare versions</h2>
      <form className="inline-form" onSubmit={compare}>
        <VersionSelect template={t} value={a} onChange={setA} testId="diff-a" label="From" />
        <VersionSelect template={t} value={b} onChange={setB} testId="diff-b" label="To" />
        <button type="submit" className="button secondary" disabled={busy} data-testid="show-diff">
          {busy ? "Comparing…" : "Show the diff"}
        </button>
      </form>
      <ErrorBox error={error} onRetry={() => void compare()} />
      {diff && (
        <div data-testid="diff" className="diff">
          {diff.identical ? (
            <p className="muted">The two versions are identical.</p>
          ) : (
            <pre>
              {diff.diff.split("\n").map((line, i) => (
                <span
                  key={i}
                  className={
                    line.startsWith("+++") || line.startsWith("---")
                      ? "diff-file"
                      : line.startsWith("+")
                        ? "diff-add"
                        : line.startsWith("-")
                          ? "diff-del"
                          : line.startsWith("@@")
                            ? "diff-hunk"
                            : undefined
                  }
                >
                  {line}
                  {"\n"}
                </span>
              ))}
            </pre>
          )}
        </div>
      )}
    </section>
  );
}

function LabelForm({ template: t, onDone }: { template: PromptTemplate; onDone: () => void }) {
  const labels = Object.keys(t.labels ?? {});
  const [label, setLabel] = useState(labels.includes("production") ? "production" : (labels[0] ?? "production"));
  const [version, setVersion] = useState(t.labels?.[label] ?? sortedVersions(t)[0]?.version ?? 1);
  const [error, setError] = useState<ApiError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event?: FormEvent) {
    event?.preventDefault();
    const name = label.trim();
    if (!/^[a-z][a-z0-9_-]{0,99}$/.test(name)) {
      setError(new ApiError(422, "label: use lowercase letters, digits, - and _, starting with a letter", [
        { field: "label", message: "use lowercase letters, digits, - and _, starting with a letter" },
      ]));
      return;
    }
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      await admin.moveLabel(t.name, name, version);
      setDone(`“${name}” now points at v${version}.`);
      onDone();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="panel" aria-labelledby="labels-title">
      <h2 id="labels-title">Move a label</h2>
      <p className="small muted">Running services pick the new version up at once; moving it back is a rollback.</p>
      <form className="inline-form" onSubmit={submit} data-testid="label-form">
        <label className="inline-field">
          <span>Label</span>
          <input
            value={label}
            list="label-names"
            onChange={(e) => {
              setLabel(e.target.value);
              const current = t.labels?.[e.target.value];
              if (current) setVersion(current);
            }}
            data-testid="label-name"
          />
          <datalist id="label-names">
            {labels.map((l) => (
              <option key={l} value={l} />
            ))}
          </datalist>
        </label>
        <VersionSelect template={t} value={version} onChange={setVersion} testId="label-version" label="to version" />
        <button type="submit" className="button secondary" disabled={busy} data-testid="move-label">
          Move label
        </button>
      </form>
      <ErrorBox error={error} onRetry={() => void submit()} />
      {done && (
        <p className="success" role="status">
          {done}
        </p>
      )}
    </section>
  );
}

function NewVersionForm({ template: t, onDone }: { template: PromptTemplate; onDone: () => void }) {
  const latest = sortedVersions(t)[0];
  const [messages, setMessages] = useState<PromptMessage[]>(() => latest?.messages.map((m) => ({ ...m })) ?? [{ role: "system", content: "" }]);
  const [variables, setVariables] = useState(() => JSON.stringify(latest?.variables ?? {}, null, 2));
  const [model, setModel] = useState(() => JSON.stringify(latest?.model ?? {}, null, 2));
  const [note, setNote] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const update = (i: number, patch: Partial<PromptMessage>) =>
    setMessages((list) => list.map((m, j) => (j === i ? { ...m, ...patch } : m)));

  async function submit(event?: FormEvent) {
    event?.preventDefault();
    const problems: { field: string; message: string }[] = [];
    let vars: Record<string, unknown> = {};
    let modelConfig: Record<string, unknown> = {};
    try {
      vars = JSON.parse(variables || "{}");
      if (typeof vars !== "object" || vars === null || Array.isArray(vars)) throw new Error();
    } catch {
      problems.push({ field: "variables", message: "must be a JSON object" });
    }
    try {
      modelConfig = JSON.parse(model || "{}");
      if (typeof modelConfig !== "object" || modelConfig === null || Array.isArray(modelConfig)) throw new Error();
    } catch {
      problems.push({ field: "model", message: "must be a JSON object" });
    }
    if (messages.length === 0 || messages.every((m) => !m.content.trim())) {
      problems.push({ field: "messages", message: "add at least one message" });
    }
    if (!note.trim()) problems.push({ field: "change_note", message: "say what changed and why" });
    if (problems.length) {
      setError(new ApiError(422, problems.map((p) => `${p.field}: ${p.message}`).join("\n"), problems));
      return;
    }
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const created = (await admin.createVersion(t.name, {
        messages: messages.filter((m) => m.content.trim()),
        variables: vars,
        model: modelConfig,
        change_note: note.trim(),
      })) as { version?: number } | null;
      setDone(created?.version ? `Saved as v${created.version}. Move a label to it when it is ready.` : "Saved.");
      setNote("");
      onDone();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="panel" aria-labelledby="new-version-title">
      <h2 id="new-version-title">New version</h2>
      <p className="small muted">Versions are immutable: this saves a new one, based on v{latest?.version ?? 1}. No label moves.</p>
      <form className="form" onSubmit={submit} data-testid="new-version-form">
        {messages.map((m, i) => (
          <fieldset key={i} className="message-editor">
            <legend>Message {i + 1}</legend>
            <div className="inline-form">
              <label className="inline-field">
                <span>Role</span>
                <select value={m.role} onChange={(e) => update(i, { role: e.target.value })} data-testid={`message-role-${i}`}>
                  <option value="system">system</option>
                  <option value="user">user</option>
                  <option value="assistant">assistant</option>
                </select>
              </label>
              <button
                type="button"
                className="button ghost small"
                onClick={() => setMessages((list) => list.filter((_, j) => j !== i))}
                disabled={messages.length <= 1}
              >
                Remove
              </button>
            </div>
            <label className="field">
              <span className="sr-only">Content of message {i + 1}</span>
              <textarea
                className="mono"
                rows={Math.min(16, Math.max(4, m.content.split("\n").length + 1))}
                value={m.content}
                onChange={(e) => update(i, { content: e.target.value })}
                data-testid={`message-content-${i}`}
              />
            </label>
          </fieldset>
        ))}
        <button type="button" className="button ghost small" onClick={() => setMessages((list) => [...list, { role: "user", content: "" }])}>
          Add a message
        </button>
        <div className="grid-2">
          <label className="field">
            <span>Variables (JSON)</span>
            <textarea className="mono" rows={5} value={variables} onChange={(e) => setVariables(e.target.value)} data-testid="variables" />
          </label>
          <label className="field">
            <span>Model settings (JSON)</span>
            <textarea className="mono" rows={5} value={model} onChange={(e) => setModel(e.target.value)} data-testid="model" />
          </label>
        </div>
        <label className="field">
          <span>Change note (required)</span>
          <input value={note} onChange={(e) => setNote(e.target.value)} maxLength={2000} required data-testid="change-note" />
        </label>
        <ErrorBox error={error} onRetry={() => void submit()} />
        <button type="submit" className="button primary" disabled={busy} data-testid="save-version">
          {busy ? "Saving…" : "Save the new version"}
        </button>
        {done && (
          <p className="success" role="status">
            {done}
          </p>
        )}
      </form>
    </section>
  );
}

function Experiments({ template: t, onDone }: { template: PromptTemplate; onDone: () => void }) {
  const [report, setReport] = useState<{ id: string; data: ExperimentReport } | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const running = t.experiments.filter((e) => e.status === "running");

  async function show(id: string) {
    setError(null);
    try {
      setReport({ id, data: await admin.experiment(id) });
    } catch (err) {
      setError(toApiError(err));
    }
  }

  return (
    <section className="panel" aria-labelledby="experiments-title">
      <h2 id="experiments-title">Experiments</h2>
      {t.experiments.length === 0 ? (
        <p className="muted">No experiments yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="experiments">
            <thead>
              <tr>
                <th scope="col">Label</th>
                <th scope="col">Arms (version: weight)</th>
                <th scope="col">Status</th>
                <th scope="col">Started</th>
                <th scope="col">Note</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
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
            </tbody>
          </table>
        </div>
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
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  async function stop(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await admin.stopExperiment(experiment.experiment_id, promote === "" ? null : promote);
      onDone();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
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

function StartExperiment({ template: t, onDone }: { template: PromptTemplate; onDone: () => void }) {
  const versions = sortedVersions(t);
  const [label, setLabel] = useState("production");
  const [arms, setArms] = useState(() => [
    { version: t.labels?.production ?? versions[1]?.version ?? versions[0]?.version ?? 1, weight: 50 },
    { version: versions[0]?.version ?? 1, weight: 50 },
  ]);
  const [note, setNote] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event?: FormEvent) {
    event?.preventDefault();
    const problems: { field: string; message: string }[] = [];
    if (arms.length < 2) problems.push({ field: "arms", message: "an experiment needs at least two arms" });
    if (new Set(arms.map((a) => a.version)).size !== arms.length) {
      problems.push({ field: "arms", message: "each arm must use a different version" });
    }
    arms.forEach((a, i) => {
      if (!(a.weight > 0 && a.weight <= 1000)) {
        problems.push({ field: `arms[${i}].weight`, message: "must be more than 0 and at most 1000" });
      }
    });
    if (problems.length) {
      setError(new ApiError(422, problems.map((p) => `${p.field}: ${p.message}`).join("\n"), problems));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await admin.startExperiment(t.name, { label: label.trim(), arms, note: note.trim() });
      onDone();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
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
          <label className="inline-field">
            <span>Arm {i + 1}: version</span>
            <select
              value={arm.version}
              onChange={(e) => setArms((list) => list.map((a, j) => (j === i ? { ...a, version: Number(e.target.value) } : a)))}
              data-testid={`arm-version-${i}`}
            >
              {versions.map((v) => (
                <option key={v.version} value={v.version}>
                  v{v.version}
                </option>
              ))}
            </select>
          </label>
          <label className="inline-field">
            <span>weight</span>
            <input
              type="number"
              min="0"
              max="1000"
              step="any"
              value={arm.weight}
              onChange={(e) => setArms((list) => list.map((a, j) => (j === i ? { ...a, weight: Number(e.target.value) } : a)))}
              data-testid={`arm-weight-${i}`}
            />
          </label>
          <button
            type="button"
            className="button ghost small"
            onClick={() => setArms((list) => list.filter((_, j) => j !== i))}
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
      <div className="table-wrap">
        <table className="table compact">
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Weight</th>
              <th scope="col">Calls</th>
              <th scope="col">Errors</th>
              <th scope="col">p50 latency</th>
              <th scope="col">Output tokens</th>
              <th scope="col">Cost / call</th>
              <th scope="col">Quality</th>
              <th scope="col">Rating</th>
            </tr>
          </thead>
          <tbody>
            {report.arms.map((a) => (
              <tr key={a.version}>
                <td>v{a.version}</td>
                <td>{a.weight}</td>
                <td>{formatNumber(a.calls)}</td>
                <td>{formatPercent(a.error_rate)}</td>
                <td>{a.p50_latency_ms === null ? "–" : `${formatNumber(a.p50_latency_ms)} ms`}</td>
                <td>{formatNumber(a.mean_output_tokens)}</td>
                <td>{a.mean_cost_usd === null ? "–" : formatUsd(a.mean_cost_usd)}</td>
                <td>{formatNumber(a.mean_quality, 2)}</td>
                <td>
                  {formatNumber(a.mean_rating, 2)} <span className="muted small">({a.ratings})</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {report.comparisons.length > 0 && (
        <table className="table compact">
          <thead>
            <tr>
              <th scope="col">Versions</th>
              <th scope="col">p (errors)</th>
              <th scope="col">p (quality)</th>
              <th scope="col">p (rating)</th>
              <th scope="col">Verdict</th>
            </tr>
          </thead>
          <tbody>
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
          </tbody>
        </table>
      )}
      {report.note && <p className="small muted">{report.note}</p>}
    </div>
  );
}

function Analytics({ name, refresh }: { name: string; refresh: number }) {
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
            <BarChart title="Calls" bars={rows.map((r) => ({ label: label(r), value: r.calls }))} format={(v) => formatNumber(v)} data-testid="chart-calls" />
            <BarChart
              title="p95 latency"
              bars={rows.map((r) => ({ label: label(r), value: r.p95_latency_ms }))}
              format={(v) => `${formatNumber(v)} ms`}
              data-testid="chart-latency"
            />
            <BarChart
              title="Total cost"
              bars={rows.map((r) => ({ label: label(r), value: r.total_cost_usd }))}
              format={(v) => formatUsd(v)}
              data-testid="chart-cost"
            />
            <BarChart
              title="Mean quality"
              bars={rows.map((r) => ({ label: label(r), value: r.mean_quality }))}
              format={(v) => formatNumber(v, 2)}
              data-testid="chart-quality"
            />
          </div>
          <div className="table-wrap">
            <table className="table compact">
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Model</th>
                  <th scope="col">Calls</th>
                  <th scope="col">Errors</th>
                  <th scope="col">p50</th>
                  <th scope="col">p95</th>
                  <th scope="col">Tokens in / out</th>
                  <th scope="col">Cost / call</th>
                  <th scope="col">Total cost</th>
                  <th scope="col">Quality</th>
                  <th scope="col">Rating</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={`${r.prompt_version}-${r.model}`}>
                    <td>v{r.prompt_version}</td>
                    <td>{r.model}</td>
                    <td>{formatNumber(r.calls)}</td>
                    <td>{formatPercent(r.error_rate)}</td>
                    <td>{r.p50_latency_ms === null ? "–" : `${formatNumber(r.p50_latency_ms)} ms`}</td>
                    <td>{r.p95_latency_ms === null ? "–" : `${formatNumber(r.p95_latency_ms)} ms`}</td>
                    <td>
                      {formatNumber(r.mean_input_tokens)} / {formatNumber(r.mean_output_tokens)}
                    </td>
                    <td>{r.mean_cost_usd === null ? "–" : formatUsd(r.mean_cost_usd)}</td>
                    <td>{r.total_cost_usd === null ? "–" : formatUsd(r.total_cost_usd)}</td>
                    <td>{formatNumber(r.mean_quality, 2)}</td>
                    <td>
                      {formatNumber(r.mean_rating, 2)} <span className="muted small">({r.ratings})</span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
