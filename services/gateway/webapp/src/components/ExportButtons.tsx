import { useState } from "react";
import { toApiError, type ApiError } from "../api/client";
import { courses } from "../api/endpoints";
import { saveResponse } from "../lib/download";
import { ErrorBox } from "./ErrorBox";

/** Download the course as Markdown or as one HTML file (authenticated fetch → Blob). */
export function ExportButtons({ courseId }: { courseId: string }) {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState<string | null>(null);

  async function download(format: "markdown" | "html") {
    setBusy(format);
    setError(null);
    setSaved(null);
    try {
      const response = await courses.exportFile(courseId, format);
      setSaved(await saveResponse(response, `course.${format === "html" ? "html" : "md"}`));
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(null);
    }
  }

  return (
    <div className="export">
      <span className="export-label">Download the course:</span>
      <button
        type="button"
        className="button secondary small"
        onClick={() => download("markdown")}
        disabled={busy !== null}
        data-testid="export-markdown"
      >
        {busy === "markdown" ? "Preparing…" : "Markdown"}
      </button>
      <button
        type="button"
        className="button secondary small"
        onClick={() => download("html")}
        disabled={busy !== null}
        data-testid="export-html"
      >
        {busy === "html" ? "Preparing…" : "HTML"}
      </button>
      {saved && (
        <span className="small muted" role="status">
          Saved {saved}
        </span>
      )}
      <ErrorBox error={error} />
    </div>
  );
}
