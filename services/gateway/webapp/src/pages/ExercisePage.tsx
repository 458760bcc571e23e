import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { useSearchParams } from "react-router-dom";
import { toApiError } from "../api/client";
import { exercises } from "../api/endpoints";
import type { Exercise, SubmissionResult } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { useAction } from "../lib/useAction";
import { useTitle } from "../lib/useTitle";
import { Markdown } from "../markdown/Markdown";
import { AssessmentHead, useLessonAssessment } from "./LessonAssessment";
import { NewExercise } from "./NewExercise";
import { RunResult } from "./RunResult";

export { describeRun } from "./RunResult";

/** Code as a fenced markdown block (the fence outlasts any backticks in the code). */
export function codeFence(code: string, language = ""): string {
  const longest = Math.max(0, ...(code.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  return `${fence}${language}\n${code.replace(/\n$/, "")}\n${fence}`;
}

export function ExercisePage() {
  const { id, n, assessment } = useLessonAssessment();
  const [search, setSearch] = useSearchParams();
  const list = assessment.data?.exercises ?? [];
  const wanted = search.get("exercise");
  const current = list.find((e) => e.exercise_id === wanted) ?? list[list.length - 1] ?? null;
  useTitle(current?.title ?? `Exercise ${n}`);

  const select = (exerciseId: string) => {
    const next = new URLSearchParams(search);
    next.set("exercise", exerciseId);
    setSearch(next, { replace: true });
  };

  return (
    <section className="exercise-page">
      <AssessmentHead courseId={id} n={n} assessment={assessment} loadingLabel="Loading the exercise…" />
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
  const { busy, error, setError, run } = useAction();
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
    await run(async () => setResult(await exercises.submit(exercise.exercise_id, code)));
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
