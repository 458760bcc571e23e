import { useRef, useState } from "react";
import { sources } from "../api/endpoints";
import type { Source } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { plural } from "../lib/format";
import { useAction } from "../lib/useAction";
import { useApi } from "../lib/useApi";
import { useJob } from "../stream/useJob";

interface Progress {
  stage: string;
  done: number;
  total: number;
}

function describe(source: Source): string {
  const size = source.size_bytes >= 1024 * 1024
    ? `${(source.size_bytes / (1024 * 1024)).toFixed(1)} MB`
    : `${Math.max(1, Math.round(source.size_bytes / 1024))} KB`;
  const pages = source.pages ? `, ${plural(source.pages, "page")}` : "";
  return `${source.kind}, ${size}${pages}, ${plural(source.chunks, "passage")}`;
}

/** The author's own materials: the plan and the lessons are written from them. */
export function SourcesPanel({ courseId }: { courseId: string }) {
  const list = useApi((signal) => sources.list(courseId, signal), [courseId]);
  const { busy, error, run } = useAction();
  const [progress, setProgress] = useState<Progress | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const { running, failed, start } = useJob((ev) => {
    const payload = ev.data.payload as Partial<Progress>;
    if (ev.event === "source.progress") {
      setProgress({ stage: payload.stage ?? "", done: payload.done ?? 0, total: payload.total ?? 0 });
    } else if (ev.event === "source.ingested") {
      setProgress(null);
      list.reload();
    }
  });

  async function upload(file: File) {
    await run(async () => {
      setProgress({ stage: "uploading", done: 0, total: 0 });
      start(await sources.upload(courseId, file), "ingest_source");
    });
    if (input.current) input.current.value = "";
  }

  async function remove(source: Source) {
    await run(async () => {
      await sources.remove(courseId, source.source_id);
      list.reload();
    });
  }

  const items = list.data?.sources ?? [];
  return (
    <section className="panel" aria-labelledby="sources-title" data-testid="sources-panel">
      <h2 id="sources-title">Your materials</h2>
      <p className="small muted">
        Add your own notes, handouts or book chapters (Markdown, text, HTML or PDF): the plan and every
        lesson are then written from them, and lessons show which passage each statement comes from.
      </p>
      {items.length > 0 && (
        <ul className="sources" data-testid="sources">
          {items.map((s) => (
            <li key={s.source_id} data-testid="source">
              <strong>{s.filename}</strong> <span className="small muted">{describe(s)}</span>{" "}
              <button
                type="button"
                className="button secondary small"
                onClick={() => void remove(s)}
                disabled={busy}
                data-testid={`delete-source-${s.filename}`}
              >
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      <label className="field">
        <span>Add a file</span>
        <input
          ref={input}
          type="file"
          accept=".md,.markdown,.txt,.html,.htm,.pdf"
          disabled={busy || running}
          data-testid="source-file"
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void upload(file);
          }}
        />
      </label>
      {(running || progress) && progress && (
        <p className="live" role="status" data-testid="source-progress">
          <span className="pulse" aria-hidden="true" />{" "}
          {progress.stage === "embedding" && progress.total
            ? `Reading your file: ${progress.done} of ${plural(progress.total, "passage")}…`
            : `Reading your file (${progress.stage})…`}
        </p>
      )}
      <ErrorBox error={error ?? list.error} onRetry={list.reload} />
      {failed && (
        <div className="error-box" role="alert" data-testid="source-failed">
          <p>The file could not be added: {failed.reason}</p>
        </div>
      )}
    </section>
  );
}
