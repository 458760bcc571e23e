import { useCallback, useEffect, useReducer, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { toApiError, type ApiError } from "../api/client";
import { exercises, lessons } from "../api/endpoints";
import type { Exercise, SubmissionResult } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { Loading } from "../components/Loading";
import { StreamNotice } from "../components/StreamNotice";
import { useApi } from "../lib/useApi";
import { useTitle } from "../lib/useTitle";
import { Markdown } from "../markdown/Markdown";
import { finalEventsFor, initialStreamState, streamReducer } from "../stream/reducer";
import { useJobStream, type JobRef, type StreamedEvent } from "../stream/useJobStream";

/** Code as a fenced markdown block (the fence outlasts any backticks in the code). */
export function codeFence(code: string, language = ""): string {
  const longest = Math.max(0, ...(code.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  return `${fence}${language}\n${code.replace(/\n$/, "")}\n${fence}`;
}

const STATUS_WORDS: Record<string, string> = {
  completed: "Your code ran to the end.",
  syntax_error: "Your code has a syntax error, so it could not run.",
  timeout: "Your code took too long and was stopped (time limit).",
  cpu_limit: "Your code used too much processor time and was stopped.",
  memory_limit: "Your code used too much memory and was stopped.",
  blocked: "Your code tried something the sandbox does not allow (such as network or file access).",
  crashed: "The run crashed before the tests finished.",
};

export function describeRun(result: SubmissionResult): string {
  const base = STATUS_WORDS[result.status] ?? `The run ended with status “${result.status}”.`;
  if (result.status === "completed") {
    return result.all_passed
      ? `All ${result.total} tests passed. Well done!`
      : `${base} ${result.passed} of ${result.total} tests passed.`;
  }
  return base;
}

export function ExercisePage() {
  const { id = "", n: nParam = "1" } = useParams();
  const n = Number(nParam);
  const [search, setSearch] = useSearchParams();
  const assessment = useApi((signal) => lessons.assessment(id, n, signal), [id, n]);
  const list = assessment.data?.exercises ?? [];
  const wanted = search.get("exercise");
  const current = list.find((e) => e.exercise_id === wanted) ?? list[list.length - 1] ?? null;
  useTitle(current?.title ?? `Exercise ${n}`);
  const base = `/courses/${encodeURIComponent(id)}/lessons/${n}`;

  const select = (exerciseId: string) => {
    const next = new URLSearchParams(search);
    next.set("exercise", exerciseId);
    setSearch(next, { replace: true });
  };

  return (
    <section className="exercise-page">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to={`/courses/${encodeURIComponent(id)}`}>Course</Link> <span aria-hidden="true">›</span>{" "}
        <Link to={base}>Lesson {n}</Link>
      </nav>
      <ErrorBox error={assessment.error} onRetry={assessment.reload} />
      {assessment.loading && !assessment.data && <Loading label="Loading the exercise…" />}
      {assessment.data && !current && (
        <div className="panel" data-testid="exercise">
          <h1>Coding exercise</h1>
          <p>{assessment.data.exercise_note || "This lesson has no coding exercise."}</p>
        </div>
      )}
      {current && (
        <>
          {list.length > 1 && (
            <div className="tabs wrap" role="group" aria-label="Exercises for this lesson">
              {list.map((e, i) => (
                <button
                  key={e.exercise_id}
                  type="button"
                  className={e.exercise_id === current.exercise_id ? "tab active" : "tab"}
                  aria-pressed={e.exercise_id === current.exercise_id}
                  onClick={() => select(e.exercise_id)}
                >
                  {i + 1}. {e.title} <span className="muted">({e.difficulty})</span>
                </button>
              ))}
            </div>
          )}
          <ExerciseView key={current.exercise_id} exercise={current} />
          <NewExercise
            courseId={id}
            n={n}
            onReady={(exerciseId) => {
              assessment.reload();
              select(exerciseId);
            }}
          />
        </>
      )}
    </section>
  );
}

const draftKey = (exerciseId: string) => `lectern.code.${exerciseId}`;

function ExerciseView({ exercise }: { exercise: Exercise }) {
  const [code, setCode] = useState<string>(() => {
    try {
      return localStorage.getItem(draftKey(exercise.exercise_id)) ?? exercise.starter_code;
    } catch {
      return exercise.starter_code;
    }
  });
  const [hints, setHints] = useState(0);
  const [result, setResult] = useState<SubmissionResult | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const tabIndents = useRef(true);
  const language = exercise.language || "python";

  useEffect(() => {
    try {
      if (code === exercise.starter_code) localStorage.removeItem(draftKey(exercise.exercise_id));
      else localStorage.setItem(draftKey(exercise.exercise_id), code);
    } catch {
      // storage blocked: the draft lives as long as the page
    }
  }, [code, exercise]);

  async function submit(event?: FormEvent) {
    event?.preventDefault();
    if (!code.trim()) {
      setError(toApiError(new Error("Write some code before you submit.")));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      setResult(await exercises.submit(exercise.exercise_id, code));
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === "Escape") {
      tabIndents.current = false; // the next Tab leaves the editor
      return;
    }
    if (event.key === "Tab" && !event.shiftKey && tabIndents.current) {
      event.preventDefault();
      const el = event.currentTarget;
      const inserted = document.execCommand?.("insertText", false, "    ");
      if (!inserted) {
        const { selectionStart: start, selectionEnd: end, value } = el;
        const next = `${value.slice(0, start)}    ${value.slice(end)}`;
        setCode(next);
        requestAnimationFrame(() => el.setSelectionRange(start + 4, start + 4));
      }
      return;
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      void submit();
    }
  }

  return (
    <article className="exercise" data-testid="exercise">
      <header>
        <h1>{exercise.title}</h1>
        <p className="exercise-meta">
          <span className={`badge difficulty-${exercise.difficulty}`}>{exercise.difficulty}</span>
          {exercise.verified ? (
            <span className="badge status-ready" title={exercise.verification_note}>
              checked against a reference solution
            </span>
          ) : (
            <span className="badge status-failed" title={exercise.verification_note}>
              not verified
            </span>
          )}
        </p>
        {!exercise.verified && exercise.verification_note && (
          <p className="notice">{exercise.verification_note}</p>
        )}
      </header>

      <Markdown source={exercise.statement} className="statement" data-testid="statement" />

      <form className="form" onSubmit={submit}>
        <label className="field" htmlFor={`code-${exercise.exercise_id}`}>
          <span>Your solution ({language})</span>
        </label>
        <textarea
          id={`code-${exercise.exercise_id}`}
          className="code-editor"
          value={code}
          onChange={(e) => setCode(e.target.value)}
          onKeyDown={onKeyDown}
          onFocus={() => {
            tabIndents.current = true;
          }}
          rows={Math.min(30, Math.max(10, code.split("\n").length + 2))}
          spellCheck={false}
          autoCapitalize="off"
          autoComplete="off"
          autoCorrect="off"
          wrap="off"
          aria-describedby={`code-help-${exercise.exercise_id}`}
          data-testid="code"
        />
        <p id={`code-help-${exercise.exercise_id}`} className="hint">
          Tab indents; press Esc then Tab to move on. Ctrl+Enter submits.
        </p>
        <ErrorBox error={error} onRetry={() => void submit()} />
        <div className="actions">
          <button type="submit" className="button primary" disabled={busy} data-testid="submit-code">
            {busy ? "Running the tests…" : "Run the tests"}
          </button>
          <button
            type="button"
            className="button ghost"
            onClick={() => setCode(exercise.starter_code)}
            disabled={busy || code === exercise.starter_code}
          >
            Reset to the starter code
          </button>
        </div>
      </form>

      {result && <RunResult result={result} />}

      <section aria-labelledby={`tests-${exercise.exercise_id}`}>
        <h2 id={`tests-${exercise.exercise_id}`}>Tests you can see</h2>
        {exercise.visible_tests ? (
          <Markdown source={codeFence(exercise.visible_tests, language)} data-testid="visible-tests" />
        ) : (
          <p className="muted">No visible tests.</p>
        )}
        {exercise.hidden_test_count > 0 && (
          <p className="small muted">
            Plus {exercise.hidden_test_count} hidden {exercise.hidden_test_count === 1 ? "check" : "checks"} run when you submit.
          </p>
        )}
      </section>

      {exercise.hints.length > 0 && (
        <section aria-labelledby={`hints-${exercise.exercise_id}`} className="hints">
          <h2 id={`hints-${exercise.exercise_id}`}>Hints</h2>
          {hints > 0 && (
            <ol data-testid="hints">
              {exercise.hints.slice(0, hints).map((hint, i) => (
                <li key={i} data-testid={`hint-${i + 1}`}>
                  {hint}
                </li>
              ))}
            </ol>
          )}
          {hints < exercise.hints.length ? (
            <button type="button" className="button ghost small" onClick={() => setHints((h) => h + 1)} data-testid="show-hint">
              Show a hint ({hints + 1} of {exercise.hints.length})
            </button>
          ) : (
            <p className="small muted">That was the last hint.</p>
          )}
        </section>
      )}
    </article>
  );
}

function RunResult({ result }: { result: SubmissionResult }) {
  const ref = useRef<HTMLElement>(null);
  useEffect(() => ref.current?.focus(), [result]);
  return (
    <section
      ref={ref}
      tabIndex={-1}
      className={`panel run-result ${result.all_passed ? "passed" : "failed"}`}
      data-testid="test-results"
      aria-live="polite"
    >
      <h2>
        {result.passed} / {result.total} tests passed
      </h2>
      <p data-testid="sandbox-status" data-status={result.status}>
        {describeRun(result)}
      </p>
      {result.reason && result.status !== "completed" && <p className="reason">{result.reason}</p>}
      {result.tests.length > 0 && (
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Test</th>
              <th scope="col">Result</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {result.tests.map((t, i) => (
              <tr key={`${t.suite}-${t.name}-${i}`} className={`test-${t.status}`} data-testid="test-row">
                <td>
                  <code>{t.name}</code> {t.suite === "hidden" && <span className="muted small">(hidden)</span>}
                </td>
                <td>
                  <span className={`badge test-${t.status}`}>{t.status}</span>
                </td>
                <td className="test-message">{t.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {result.output && (
        <details>
          <summary>Output</summary>
          <pre className="output">{result.output}</pre>
        </details>
      )}
    </section>
  );
}

function NewExercise({ courseId, n, onReady }: { courseId: string; n: number; onReady: (exerciseId: string) => void }) {
  const [job, setJob] = useState<JobRef | null>(null);
  const [stream, dispatch] = useReducer(streamReducer, initialStreamState);
  const [busy, setBusy] = useState<"easier" | "harder" | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const onReadyRef = useRef(onReady);
  onReadyRef.current = onReady;

  const onEvent = useCallback((ev: StreamedEvent) => {
    dispatch({ type: "event", ...ev });
    if (ev.event === "exercise.ready") {
      const payload = ev.data.payload as { exercise?: { exercise_id?: string } };
      if (payload.exercise?.exercise_id) onReadyRef.current(payload.exercise.exercise_id);
    }
  }, []);
  const { status, reconnect } = useJobStream(job, onEvent);
  const running = job !== null && !stream.finished[job.jobId];
  const failed = stream.failed && job && stream.failed.jobId === job.jobId ? stream.failed : null;

  async function ask(difficulty: "easier" | "harder") {
    setBusy(difficulty);
    setError(null);
    try {
      const accepted = await lessons.newExercise(courseId, n, difficulty);
      dispatch({ type: "reset" });
      setJob({ jobId: accepted.job_id, eventsUrl: accepted.events_url, finalEvents: finalEventsFor("generate_exercise") });
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(null);
    }
  }

  return (
    <section className="panel new-exercise" aria-labelledby="new-exercise-title">
      <h2 id="new-exercise-title">Another exercise</h2>
      <p className="small muted">Too hard, or too easy? Get a new exercise for this lesson.</p>
      <div className="actions">
        <button type="button" className="button secondary" onClick={() => void ask("easier")} disabled={busy !== null || running} data-testid="easier-exercise">
          Try an easier one
        </button>
        <button type="button" className="button secondary" onClick={() => void ask("harder")} disabled={busy !== null || running} data-testid="harder-exercise">
          Try a harder one
        </button>
      </div>
      <ErrorBox error={error} />
      <StreamNotice status={status} onReconnect={reconnect} />
      {running && (
        <p className="live" role="status" data-testid="exercise-job">
          <span className="pulse" aria-hidden="true" /> Writing and checking a new exercise… this can take a minute.
        </p>
      )}
      {stream.exercise && !running && (
        <p className="success" role="status" data-testid="exercise-job">
          New exercise ready: {stream.exercise.exercise.title}.
        </p>
      )}
      {failed && (
        <div className="error-box" role="alert" data-testid="job-failed">
          <p>No new exercise this time: {failed.reason}</p>
          {failed.retryable && (
            <p>
              <button type="button" className="button secondary small" onClick={() => void ask("easier")}>
                Try again (easier)
              </button>{" "}
              <button type="button" className="button secondary small" onClick={() => void ask("harder")}>
                Try again (harder)
              </button>
            </p>
          )}
        </div>
      )}
    </section>
  );
}
