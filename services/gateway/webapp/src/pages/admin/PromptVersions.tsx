import { useState, type FormEvent } from "react";
import { admin } from "../../api/endpoints";
import type { PromptDiff, PromptTemplate } from "../../api/types";
import { DataTable } from "../../components/DataTable";
import { ErrorBox } from "../../components/ErrorBox";
import { formatDate } from "../../lib/format";
import { useAction } from "../../lib/useAction";

// A template's versions: the list of them, a picker, and the diff between two.

/** The versions, newest first. */
export function sortedVersions(t: PromptTemplate) {
  return [...t.versions].sort((a, b) => b.version - a.version);
}

function labelsOf(t: PromptTemplate, version: number): string[] {
  return Object.entries(t.labels ?? {})
    .filter(([, v]) => v === version)
    .map(([label]) => label);
}

export function Versions({ template: t }: { template: PromptTemplate }) {
  return (
    <section className="panel" aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <DataTable columns={["Version", "Change note", "By", "Created", "Labels"]} data-testid="versions">
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
      </DataTable>
    </section>
  );
}

export function VersionSelect({
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

function diffClass(line: string): string | undefined {
  if (line.startsWith("+++") || line.startsWith("---")) return "diff-file";
  if (line.startsWith("+")) return "diff-add";
  if (line.startsWith("-")) return "diff-del";
  if (line.startsWith("@@")) return "diff-hunk";
  return undefined;
}

export function DiffView({ template: t }: { template: PromptTemplate }) {
  const versions = sortedVersions(t);
  const latest = versions[0]?.version ?? 1;
  const [a, setA] = useState(versions[1]?.version ?? latest);
  const [b, setB] = useState(latest);
  const [diff, setDiff] = useState<PromptDiff | null>(null);
  const { busy, error, run } = useAction();

  async function compare(event?: FormEvent) {
    event?.preventDefault();
    await run(async () => setDiff(await admin.diff(t.name, a, b)));
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
                <span key={i} className={diffClass(line)}>
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
