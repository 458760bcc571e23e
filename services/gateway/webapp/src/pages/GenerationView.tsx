import { Link } from "react-router-dom";
import type { ApiError } from "../api/client";
import type { Course, CourseModule, CourseProgress, Estimate } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { ExportButtons } from "../components/ExportButtons";
import { Loading } from "../components/Loading";
import { ProgressBar } from "../components/ProgressBar";
import { RecommendationBox } from "../components/Recommendation";
import { formatNumber, formatUsd } from "../lib/format";
import { Markdown } from "../markdown/Markdown";
import type { StreamState } from "../stream/reducer";

// A course once its plan is agreed: the lessons as they are written, then the finished course.

function bestProgress(a: CourseProgress | null | undefined, b: CourseProgress | null | undefined) {
  if (!a) return b ?? null;
  if (!b) return a;
  return b.done > a.done ? b : a;
}

export interface GenerationProps {
  courseId: string;
  course: Course | null;
  stream: StreamState;
  status: string;
  error: ApiError | null;
  onRetry?: () => void;
}

export function GenerationView({ courseId, course, stream, status, error, onRetry }: GenerationProps) {
  const modules: CourseModule[] =
    course?.modules && course.modules.length > 0 ? course.modules : (stream.finalized?.modules ?? []);
  const progress = bestProgress(course?.progress, stream.progress) ?? {
    done: status === "ready" ? modules.length * 2 : 0,
    total: Math.max(1, modules.length * 2),
  };
  const plan = stream.plan ?? course?.plan;
  return (
    <div className="generation">
      <ErrorBox error={error} onRetry={onRetry} />
      {(stream.finalized?.estimate ?? course?.estimate) && (
        <EstimateBox estimate={(stream.finalized?.estimate ?? course?.estimate)!} />
      )}
      <section className="panel" aria-labelledby="progress-title">
        <h2 id="progress-title">{status === "ready" ? "Your course is ready" : "Writing your course"}</h2>
        <ProgressBar done={progress.done} total={progress.total} />
        <p className="small muted">
          {status === "ready"
            ? "Every lesson is written and has its quiz."
            : "Lessons appear below as they are written; each then gets a quiz and, where it fits, a coding exercise."}
        </p>
        {status === "ready" && <ExportButtons courseId={courseId} />}
      </section>

      {status === "ready" && <RecommendationBox courseId={courseId} />}

      <section aria-labelledby="modules-title">
        <h2 id="modules-title">Lessons</h2>
        {modules.length === 0 ? (
          <Loading label="Turning the plan into modules…" />
        ) : (
          <ol className="modules" data-testid="modules">
            {modules.map((m) => (
              <ModuleItem key={m.module_id || m.order} courseId={courseId} module={m} stream={stream} />
            ))}
          </ol>
        )}
      </section>

      {plan && (
        <details className="panel">
          <summary>The plan you agreed on</summary>
          <Markdown source={plan} diagrams={false} />
        </details>
      )}
    </div>
  );
}

function EstimateBox({ estimate }: { estimate: Estimate }) {
  const stats: [string, string][] = [
    ["Model calls", formatNumber(estimate.calls)],
    ["Input tokens", formatNumber(estimate.input_tokens)],
    ["Output tokens", formatNumber(estimate.output_tokens)],
    ["Estimated cost", estimate.cost_usd === null ? "unknown" : formatUsd(estimate.cost_usd)],
  ];
  return (
    <section className="panel estimate" data-testid="estimate" aria-label="Estimate">
      <h2>What writing it takes</h2>
      <dl className="stats">
        {stats.map(([term, value]) => (
          <div key={term}>
            <dt>{term}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      <p className="small muted">
        Priced for {estimate.model}
        {estimate.cost_usd === null ? " (no known price for this model)" : ""}.
      </p>
    </section>
  );
}

function ModuleItem({ courseId, module: m, stream }: { courseId: string; module: CourseModule; stream: StreamState }) {
  const written = stream.lessons[m.order] !== undefined || m.lesson_status === "written";
  const assessed = stream.assessments[m.order] !== undefined || m.assessment_status === "ready";
  const writing = !written && stream.steps[`lesson:${m.order}`] !== undefined;
  const hasExercise = Boolean(m.exercise_id ?? stream.assessments[m.order]?.exercise);
  const base = `/courses/${encodeURIComponent(courseId)}/lessons/${m.order}`;
  const title = stream.lessons[m.order]?.title ?? m.title;
  return (
    <li className={`module ${written ? "written" : "pending"}`} data-testid={`module-${m.order}`}>
      <div className="module-head">
        <span className="module-number" aria-hidden="true">
          {m.order}
        </span>
        <div className="module-body">
          {written ? (
            <Link to={base} className="module-title" data-testid={`lesson-link-${m.order}`}>
              {title}
            </Link>
          ) : (
            <span className="module-title">{title}</span>
          )}
          {m.description && <p className="small muted">{m.description}</p>}
          <div className="module-meta small">
            {m.estimated_hours ? <span>{formatNumber(m.estimated_hours, 1)} h</span> : null}
            {m.lesson_status === "failed" ? (
              <span className="badge status-failed">lesson failed</span>
            ) : written ? (
              <span className="badge status-ready">written</span>
            ) : writing ? (
              <span className="badge status-generating">
                writing…
              </span>
            ) : (
              <span className="badge">waiting</span>
            )}
            {assessed && (
              <>
                <Link to={`${base}/quiz`} data-testid={`quiz-link-${m.order}`}>
                  Quiz
                </Link>
                {hasExercise && (
                  <Link to={`${base}/exercise`} data-testid={`exercise-link-${m.order}`}>
                    Exercise
                  </Link>
                )}
              </>
            )}
            {m.assessment_status === "failed" && <span className="badge status-failed">quiz failed</span>}
          </div>
          {m.learning_objectives?.length > 0 && (
            <details className="objectives">
              <summary>What you will be able to do</summary>
              <ul>
                {m.learning_objectives.map((o, i) => (
                  <li key={i}>{o}</li>
                ))}
              </ul>
            </details>
          )}
        </div>
      </div>
    </li>
  );
}
