import { useState, type FormEvent } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { toApiError } from "../api/client";
import type { Citation } from "../api/types";
import { courses, lessons } from "../api/endpoints";
import { ErrorBox } from "../components/ErrorBox";
import { Loading } from "../components/Loading";
import { StreamNotice } from "../components/StreamNotice";
import { formatDate } from "../lib/format";
import { useAction } from "../lib/useAction";
import { useApi } from "../lib/useApi";
import { useTitle } from "../lib/useTitle";
import { Markdown } from "../markdown/Markdown";
import { useJob } from "../stream/useJob";

/** The lesson without a leading "# Title" that repeats the page heading. */
export function withoutTitle(markdown: string, title: string): string {
  const match = /^\s*#[ \t]+(.+?)[ \t]*#*[ \t]*(\r?\n|$)/.exec(markdown);
  if (match && match[1].trim().toLowerCase() === title.trim().toLowerCase()) {
    return markdown.slice(match[0].length);
  }
  return markdown;
}

export function LessonPage() {
  const { id = "", n: nParam = "1" } = useParams();
  const n = Number(nParam);
  const [search, setSearch] = useSearchParams();
  const versionParam = Number(search.get("version")) || undefined;

  const lesson = useApi(
    (signal) => lessons.get(id, n, versionParam, signal),
    [id, n, versionParam],
  );
  const course = useApi((signal) => courses.get(id, signal), [id]);
  useTitle(lesson.data?.title ?? `Lesson ${n}`);

  const total = course.data?.modules.length ?? 0;
  const base = `/courses/${encodeURIComponent(id)}`;
  const latest = lesson.data ? Math.max(lesson.data.version, ...lesson.data.versions.map((v) => v.version)) : 0;

  return (
    <article data-testid="lesson" className="lesson-page">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/courses">Your courses</Link> <span aria-hidden="true">›</span>{" "}
        <Link to={base}>{course.data?.title ?? "Course"}</Link>
      </nav>
      <ErrorBox error={lesson.error} onRetry={lesson.reload} />
      {lesson.loading && !lesson.data && <Loading label="Loading the lesson…" />}
      {lesson.data && (
        <>
          <header className="lesson-head">
            <p className="eyebrow">
              Lesson {n}
              {total ? ` of ${total}` : ""}
            </p>
            <h1>{lesson.data.title}</h1>
            <div className="lesson-tools">
              {lesson.data.versions.length > 1 && (
                <label className="inline-field">
                  <span>Version</span>
                  <select
                    value={lesson.data.version}
                    data-testid="version-picker"
                    onChange={(e) => {
                      const v = Number(e.target.value);
                      const next = new URLSearchParams(search);
                      if (v === latest) next.delete("version");
                      else next.set("version", String(v));
                      setSearch(next);
                    }}
                  >
                    {[...lesson.data.versions]
                      .sort((a, b) => b.version - a.version)
                      .map((v) => (
                        <option key={v.version} value={v.version}>
                          {`Version ${v.version}${v.version === latest ? " (latest)" : ""} · ${formatDate(v.created_at)}`}
                        </option>
                      ))}
                  </select>
                </label>
              )}
              <Link to={`${base}/lessons/${n}/quiz`} className="button secondary small" data-testid="quiz-link">
                Take the quiz
              </Link>
              <Link to={`${base}/lessons/${n}/exercise`} className="button secondary small" data-testid="exercise-link">
                Coding exercise
              </Link>
            </div>
            {lesson.data.version !== latest && (
              <p className="notice" role="status">
                You are reading an older version.{" "}
                <Link to={`${base}/lessons/${n}`}>Read the latest</Link>.
              </p>
            )}
            {(() => {
              const feedback = lesson.data.versions.find((v) => v.version === lesson.data!.version)?.feedback;
              return feedback ? (
                <p className="small muted">Revised after your feedback: “{feedback}”</p>
              ) : null;
            })()}
          </header>

          <Markdown
            source={withoutTitle(lesson.data.markdown, lesson.data.title)}
            className="lesson-body"
            data-testid="lesson-body"
          />

          <LessonSources citations={lesson.data.citations ?? []} />

          <nav className="pager" aria-label="Lessons">
            {n > 1 ? <Link to={`${base}/lessons/${n - 1}`}>← Previous lesson</Link> : <span />}
            {total > n ? <Link to={`${base}/lessons/${n + 1}`}>Next lesson →</Link> : <Link to={base}>Back to the course</Link>}
          </nav>

          <div className="lesson-actions">
            <RatingForm lessonId={lesson.data.lesson_id} key={`${lesson.data.lesson_id}-${lesson.data.version}`} />
            <RevisionForm
              courseId={id}
              n={n}
              onRevised={() => {
                const next = new URLSearchParams(search);
                next.delete("version");
                setSearch(next);
                lesson.reload();
              }}
            />
          </div>
        </>
      )}
    </article>
  );
}

/** Where a citation points: file, page of a PDF, section. */
export function citationLabel(c: Citation): string {
  const where = c.page ? `${c.filename}, p. ${c.page}` : c.filename;
  return c.section ? `${where} — ${c.section}` : where;
}

/** The passages of the course's sources the lesson cites, by their [S<n>] marker. */
function LessonSources({ citations }: { citations: Citation[] }) {
  if (!citations.length) return null;
  return (
    <section className="panel lesson-sources" aria-labelledby="lesson-sources-title" data-testid="lesson-sources">
      <h2 id="lesson-sources-title">From your sources</h2>
      <p className="small muted">
        Statements marked [S1], [S2]… in the lesson come from these passages of your course materials.
      </p>
      <ol className="citations">
        {citations.map((c) => (
          <li key={c.marker} id={`cite-${c.marker}`} data-testid="citation">
            <strong>[{c.marker}]</strong> {citationLabel(c)}
            <blockquote className="small">{c.quote}</blockquote>
          </li>
        ))}
      </ol>
    </section>
  );
}

function RatingForm({ lessonId }: { lessonId: string }) {
  const [rating, setRating] = useState<number | null>(null);
  const [comment, setComment] = useState("");
  const { busy, error, setError, run } = useAction();
  const [sent, setSent] = useState(false);

  async function submit(event?: FormEvent) {
    event?.preventDefault();
    if (!rating) {
      setError(toApiError(new Error("Choose a rating from 1 to 5 first.")));
      return;
    }
    await run(async () => {
      await lessons.feedback(lessonId, rating, comment.trim());
      setSent(true);
    });
  }

  if (sent) {
    return (
      <section className="panel" aria-label="Rate this lesson">
        <p role="status" data-testid="rating-thanks">
          Thank you! Your rating helps make the next lessons better.
        </p>
      </section>
    );
  }
  return (
    <form className="panel form" onSubmit={submit} data-testid="rating-form">
      <fieldset className="rating">
        <legend>How useful was this lesson?</legend>
        <div className="stars">
          {[1, 2, 3, 4, 5].map((value) => (
            <label key={value} className={rating !== null && value <= rating ? "star on" : "star"}>
              <input
                type="radio"
                name="rating"
                value={value}
                checked={rating === value}
                onChange={() => setRating(value)}
                data-testid={`rating-${value}`}
              />
              <span aria-hidden="true">★</span>
              <span className="sr-only">
                {value} {value === 1 ? "star" : "stars"}
              </span>
            </label>
          ))}
        </div>
      </fieldset>
      <label className="field">
        <span>Comment (optional)</span>
        <textarea
          rows={2}
          value={comment}
          maxLength={4000}
          onChange={(e) => setComment(e.target.value)}
          data-testid="rating-comment"
        />
      </label>
      <ErrorBox error={error} onRetry={() => void submit()} />
      <button type="submit" className="button secondary" disabled={busy} data-testid="submit-rating">
        {busy ? "Sending…" : "Send rating"}
      </button>
    </form>
  );
}

function RevisionForm({ courseId, n, onRevised }: { courseId: string; n: number; onRevised: () => void }) {
  const [feedback, setFeedback] = useState("");
  const { busy, error, setError, run } = useAction();
  const [revisedVersion, setRevisedVersion] = useState<number | null>(null);
  const { stream, status, reconnect, running, failed, start } = useJob((ev) => {
    if (ev.event === "lesson.revised") {
      const payload = ev.data.payload as { version?: number };
      setRevisedVersion(payload.version ?? null);
      onRevised();
    }
  });

  const text = stream.steps[`revise:${n}`]?.text ?? null;

  async function submit(event?: FormEvent) {
    event?.preventDefault();
    const wanted = feedback.trim();
    if (!wanted) {
      setError(toApiError(new Error("Say what should change in the lesson.")));
      return;
    }
    setRevisedVersion(null);
    await run(async () => {
      start(await lessons.revise(courseId, n, wanted), "revise_lesson");
      setFeedback("");
    });
  }

  return (
    <section className="panel" aria-labelledby="revise-title" data-testid="revision">
      <h2 id="revise-title">Ask for a revision</h2>
      <form className="form" onSubmit={submit}>
        <label className="field">
          <span>What should change?</span>
          <textarea
            rows={3}
            value={feedback}
            maxLength={4000}
            onChange={(e) => setFeedback(e.target.value)}
            placeholder="e.g. Explain it with a cooking analogy and add one more example"
            disabled={running}
            data-testid="revision-feedback"
          />
        </label>
        <ErrorBox error={error} onRetry={() => void submit()} />
        <button type="submit" className="button secondary" disabled={busy || running} data-testid="request-revision">
          {running ? "Revising…" : busy ? "Sending…" : "Ask for a revision"}
        </button>
      </form>
      <StreamNotice status={status} onReconnect={reconnect} />
      {running && (
        <div className="revision-stream" data-testid="revision-stream" aria-live="polite">
          <p className="live" role="status">
            <span className="pulse" aria-hidden="true" /> Rewriting the lesson…
          </p>
          {text && <Markdown source={text} diagrams={false} />}
        </div>
      )}
      {failed && (
        <div className="error-box" role="alert" data-testid="job-failed">
          <p>The revision did not finish: {failed.reason}</p>
          {failed.retryable && <p>Ask again to retry.</p>}
        </div>
      )}
      {revisedVersion !== null && (
        <p className="success" role="status" data-testid="revision-status">
          Done: you are now reading version {revisedVersion}.
        </p>
      )}
    </section>
  );
}
