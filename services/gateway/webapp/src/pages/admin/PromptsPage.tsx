import { useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { admin } from "../../api/endpoints";
import { DataTable } from "../../components/DataTable";
import { ErrorBox } from "../../components/ErrorBox";
import { Loading } from "../../components/Loading";
import { useApi } from "../../lib/useApi";
import { useTitle } from "../../lib/useTitle";

export function PromptsPage() {
  useTitle("Prompt admin");
  const [params, setParams] = useSearchParams();
  const search = params.get("search") ?? "";
  const [text, setText] = useState(search);
  const { data, error, loading, reload } = useApi((signal) => admin.prompts(search, signal), [search]);

  function submit(event: FormEvent) {
    event.preventDefault();
    const next = new URLSearchParams(params);
    if (text.trim()) next.set("search", text.trim());
    else next.delete("search");
    setParams(next);
  }

  return (
    <section>
      <div className="page-head">
        <h1>Prompt templates</h1>
      </div>
      <form className="search-form" role="search" onSubmit={submit}>
        <label htmlFor="prompt-search" className="sr-only">
          Search templates
        </label>
        <input
          id="prompt-search"
          type="search"
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder="Search by name, task or description"
          data-testid="prompt-search"
        />
        <button type="submit" className="button secondary">
          Search
        </button>
      </form>
      <ErrorBox error={error} onRetry={reload} />
      {loading && !data && <Loading label="Loading templates…" />}
      {data && data.length === 0 && <p className="muted">No template matches “{search}”.</p>}
      {data && data.length > 0 && (
        <DataTable columns={["Template", "Task", "Versions", "Labels"]} data-testid="prompt-list">
          {data.map((p) => (
            <tr key={p.name} data-testid="prompt-item">
              <td>
                <Link to={`/admin/prompts/${encodeURIComponent(p.name)}`}>{p.name}</Link>
                {p.description && <div className="small muted">{p.description}</div>}
              </td>
              <td>{p.task}</td>
              <td>{p.versions}</td>
              <td>
                <LabelChips labels={p.labels} />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}

export function LabelChips({ labels }: { labels: Record<string, number> }) {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return <span className="muted">none</span>;
  return (
    <span className="chips">
      {entries.map(([label, version]) => (
        <span key={label} className="chip">
          {label} → v{version}
        </span>
      ))}
    </span>
  );
}
