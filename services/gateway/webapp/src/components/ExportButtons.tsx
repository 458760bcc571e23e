import { useState } from "react";
import { courses } from "../api/endpoints";
import { saveResponse } from "../lib/download";
import { useAction } from "../lib/useAction";
import { ErrorBox } from "./ErrorBox";

type Format = "markdown" | "html";

const FORMATS: [Format, string][] = [
  ["markdown", "Markdown"],
  ["html", "HTML"],
];

/** Download the course as Markdown or as one HTML file (authenticated fetch → Blob). */
export function ExportButtons({ courseId }: { courseId: string }) {
  const { busy, error, run } = useAction();
  const [format, setFormat] = useState<Format | null>(null);
  const [saved, setSaved] = useState<string | null>(null);

  async function download(wanted: Format) {
    setFormat(wanted);
    setSaved(null);
    await run(async () => {
      const response = await courses.exportFile(courseId, wanted);
      setSaved(await saveResponse(response, `course.${wanted === "html" ? "html" : "md"}`));
    });
  }

  return (
    <div className="export">
      <span className="export-label">Download the course:</span>
      {FORMATS.map(([f, label]) => (
        <button
          key={f}
          type="button"
          className="button secondary small"
          onClick={() => download(f)}
          disabled={busy}
          data-testid={`export-${f}`}
        >
          {busy && format === f ? "Preparing…" : label}
        </button>
      ))}
      {saved && (
        <span className="small muted" role="status">
          Saved {saved}
        </span>
      )}
      <ErrorBox error={error} />
    </div>
  );
}
