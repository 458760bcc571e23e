import {
  useCallback,
  useEffect,
  useReducer,
  useRef,
  useState,
  type FormEvent,
  type KeyboardEvent,
} from "react";
import { Link, useLocation, useParams } from "react-router-dom";
import { ApiError, toApiError } from "../api/client";
import { courses } from "../api/endpoints";
import type { ChatTurn, Course, CourseModule, CourseProgress, Estimate } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { ExportButtons } from "../components/ExportButtons";
import { Loading } from "../components/Loading";
import { ProgressBar } from "../components/ProgressBar";
import { RecommendationBox } from "../components/Recommendation";
import { StatusBadge } from "../components/StatusBadge";
import { StreamNotice } from "../components/StreamNotice";
import { formatNumber, formatUsd } from "../lib/format";
import { forgetJob, recallJob, type PendingJob } from "../lib/pendingJob";
import { useTitle } from "../lib/useTitle";
import { Markdown } from "../markdown/Markdown";
import {
  finalEventsFor,
  initialStreamState,
  isDuplicate,
  streamReducer,
  type StreamState,
} from "../stream/reducer";
import { useJobStream, type JobRef, type StreamedEvent } from "../stream/useJobStream";

const PLAN_JOBS = new Set(["plan_course", "refine_plan"]);
const COURSE_JOBS = new Set(["plan_course", "refine_plan", "finalize"]);
const POLL_MS = 3000;

interface FollowedJob extends JobRef {
  kind: string;
}

function follow(job: PendingJob | { job_id: string; events_url: string; kind: string }, auto = false): FollowedJob {
  return {
    jobId: job.job_id,
    eventsUrl: job.events_url,
    kind: job.kind,
    finalEvents: finalEventsFor(job.kind, auto),
  };
}

function bestProgress(a: CourseProgress | null | undefined, b: CourseProgress | null | undefined) {
  if (!a) return b ?? null;
  if (!b) return a;
  return b.done > a.done ? b : a;
}

export function CoursePage() {
  const { id = "" } = useParams();
  const location = useLocation();
  const routeJob = (location.state as { job?: PendingJob } | null)?.job ?? null;

  const [course, setCourse] = useState<Course | null>(null);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const [stillPlanning, setStillPlanning] = useState(false);
  const [job, setJob] = useState<FollowedJob | null>(null);
  const [stream, dispatch] = useReducer(streamReducer, initialStreamState);
  const [pendingMessage, setPendingMessage] = useState<string | null>(null);
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [retryAction, setRetryAction] = useState<(() => void) | null>(null);
  const [busy, setBusy] = useState(false);

  const streamRef = useRef<StreamState>(stream);
  streamRef.current = stream;
  const jobRef = useRef<FollowedJob | null>(job);
  jobRef.current = job;

  useTitle(course?.title ?? stream.finalized?.title ?? (course?.profile?.topic as string | undefined) ?? "Course");

  const startFollowing = useCallback((next: FollowedJob) => {
    if (jobRef.current?.jobId === next.jobId) return;
    jobRef.current = next;
    setJob(next);
  }, []);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const found = await courses.get(id, signal);
        if (signal?.aborted) return;
        setCourse(found);
        setLoadError(null);
        setStillPlanning(false);
        const running = [...(found.jobs ?? [])].reverse().find((j) => j.status === "running" && COURSE_JOBS.has(j.kind));
        if (running) {
          startFollowing(follow(running, Boolean(found.profile?.auto_finalize)));
        }
      } catch (err) {
        if (signal?.aborted) return;
        const error = toApiError(err);
        if (error.status === 409) {
          // the welcome plan is still being written: follow its job's stream instead
          setStillPlanning(true);
          setLoadError(null);
          const pending = routeJob ?? recallJob(id);
          if (pending) startFollowing(follow(pending));
        } else {
          setLoadError(error);
        }
      }
    },
    [id, routeJob, startFollowing],
  );

  useEffect(() => {
    const controller = new AbortController();
    void load(controller.signal);
    return () => controller.abort();
  }, [load]);

  // a plan still on its way with no stream to follow (e.g. opened in a new tab): poll
  useEffect(() => {
    if (!stillPlanning || job) return;
    const timer = window.setInterval(() => void load(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [stillPlanning, job, load]);

  const onEvent = useCallback(
    (ev: StreamedEvent) => {
      if (isDuplicate(streamRef.current, ev.jobId, ev.id)) return;
      dispatch({ type: "event", ...ev });
      switch (ev.event) {
        case "course.plan_proposed":
          forgetJob(id);
          void load().then(() => setPendingMessage(null));
          break;
        case "course.plan_finalized":
        case "course.ready":
        case "job.failed":
          void load();
          break;
        default:
          break;
      }
    },
    [id, load],
  );

  const { status: streamStatus, reconnect } = useJobStream(job, onEvent);

  // lessons still being written but no stream to follow (its job was lost): poll
  const generatingUnfollowed =
    course?.status === "generating" && !stream.ready && (!job || Boolean(stream.finished[job.jobId]));
  useEffect(() => {
    if (!generatingUnfollowed) return;
    const timer = window.setInterval(() => void load(), POLL_MS * 2);
    return () => window.clearInterval(timer);
  }, [generatingUnfollowed, load]);

  const jobDone = job ? Boolean(stream.finished[job.jobId]) : true;
  const jobFailed = stream.failed && job && stream.failed.jobId === job.jobId ? stream.failed : null;
  const planJobRunning = (job !== null && PLAN_JOBS.has(job.kind) && !jobDone) || stillPlanning;

  async function sendMessage(text: string) {
    setBusy(true);
    setActionError(null);
    setRetryAction(null);
    try {
      const accepted = await courses.message(id, text);
      setPendingMessage(text);
      startFollowing(follow({ ...accepted, kind: "refine_plan" }));
      return true;
    } catch (err) {
      setActionError(toApiError(err));
      setRetryAction(() => () => void sendMessage(text));
      return false;
    } finally {
      setBusy(false);
    }
  }

  async function finalize() {
    setBusy(true);
    setActionError(null);
    setRetryAction(null);
    try {
      const accepted = await courses.finalize(id);
      startFollowing(follow({ ...accepted, kind: "finalize" }));
      setCourse((c) => (c ? { ...c, status: "generating" } : c));
    } catch (err) {
      setActionError(toApiError(err));
      setRetryAction(() => () => void finalize());
    } finally {
      setBusy(false);
    }
  }

  const failedView = jobFailed ? (
    <div className="error-box" role="alert" data-testid="job-failed">
      <strong>This step did not finish.</strong>
      <p>{jobFailed.reason}</p>
      {jobFailed.retryable && job?.kind === "refine_plan" && pendingMessage && (
        <button
          type="button"
          className="button secondary"
          data-testid="retry"
          onClick={() => {
            dispatch({ type: "clearFailure" });
            void sendMessage(pendingMessage);
          }}
        >
          Try again
        </button>
      )}
      {jobFailed.retryable && job?.kind === "finalize" && (
        <button
          type="button"
          className="button secondary"
          data-testid="retry"
          onClick={() => {
            dispatch({ type: "clearFailure" });
            void finalize();
          }}
        >
          Try again
        </button>
      )}
    </div>
  ) : null;

  if (loadError && !course) {
    return (
      <section data-testid="course-page">
        <h1>Course</h1>
        {failedView}
        <ErrorBox error={loadError} onRetry={() => void load()} />
        <p>
          <Link to="/courses">Back to your courses</Link>
          {jobFailed && (
            <>
              {" "}or <Link to="/courses/new">start a new course</Link>
            </>
          )}
        </p>
      </section>
    );
  }
  if (!course && !stillPlanning) {
    return (
      <section data-testid="course-page">
        <Loading label="Loading the course…" />
      </section>
    );
  }

  const status =
    stream.ready || course?.status === "ready"
      ? "ready"
      : course?.status === "planning" && (stream.finalized || (job?.kind === "finalize" && !jobFailed))
        ? "generating"
        : (course?.status ?? "planning");
  const title =
    stream.ready?.title ??
    course?.title ??
    stream.finalized?.title ??
    (course?.profile?.topic as string | undefined) ??
    "Your new course";

  return (
    <section data-testid="course-page" className="course-page">
      <div className="page-head">
        <div>
          <p className="crumbs">
            <Link to="/courses">Your courses</Link>
          </p>
          <h1>{title}</h1>
        </div>
        <StatusBadge status={status} testId="course-status" />
      </div>
      <StreamNotice status={streamStatus} onReconnect={reconnect} />
      {failedView}
      {course?.status === "failed" && !jobFailed && (
        <div className="error-box" role="alert">
          <p>This course could not be generated. You can start a new one with the same topic.</p>
        </div>
      )}

      {status === "planning" ? (
        <PlanningView
          course={course}
          stream={stream}
          planJobRunning={planJobRunning}
          busy={busy}
          pendingMessage={pendingMessage}
          onSend={sendMessage}
          onFinalize={finalize}
          error={actionError}
          onRetry={retryAction ?? undefined}
        />
      ) : (
        <GenerationView
          courseId={id}
          course={course}
          stream={stream}
          status={status}
          error={actionError}
          onRetry={retryAction ?? undefined}
        />
      )}
    </section>
  );
}

interface PlanningProps {
  course: Course | null;
  stream: StreamState;
  planJobRunning: boolean;
  busy: boolean;
  pendingMessage: string | null;
  onSend: (text: string) => Promise<boolean>;
  onFinalize: () => void;
  error: ApiError | null;
  onRetry?: () => void;
}

function PlanningView(props: PlanningProps) {
  const { course, stream, planJobRunning, busy, pendingMessage } = props;
  const [text, setText] = useState("");
  const streaming = stream.steps.refine_plan?.text ?? stream.steps.welcome_plan?.text ?? null;
  const plan = streaming ?? stream.plan ?? course?.plan ?? null;
  const formRef = useRef<HTMLFormElement>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const message = text.trim();
    if (!message || busy || planJobRunning) return;
    if (await props.onSend(message)) setText("");
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    // Enter sends, Shift+Enter starts a new line
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      formRef.current?.requestSubmit();
    }
  }

  return (
    <div className="planning">
      <section className="panel plan-panel" aria-labelledby="plan-title">
        <div className="panel-head">
          <h2 id="plan-title">The plan</h2>
          {planJobRunning && (
            <span className="live" role="status">
              <span className="pulse" aria-hidden="true" /> Writing…
            </span>
          )}
        </div>
        <div data-testid="plan" className="plan" aria-busy={planJobRunning}>
          {plan ? (
            <Markdown source={plan} diagrams={!streaming} />
          ) : (
            <Loading label="Lectern is drafting a plan for you…" />
          )}
        </div>
      </section>

      <aside className="panel chat-panel" aria-labelledby="chat-title">
        <h2 id="chat-title">Shape the plan</h2>
        <ChatHistory chat={course?.chat ?? []} pending={pendingMessage} />
        <form ref={formRef} className="chat-form" onSubmit={submit}>
          <label htmlFor="chat-input" className="sr-only">
            What should change in the plan?
          </label>
          <textarea
            id="chat-input"
            rows={3}
            value={text}
            onChange={(e) => setText(e.target.value)}
            onKeyDown={onKeyDown}
            placeholder="e.g. Add a module on testing and drop the history part"
            maxLength={4000}
            disabled={planJobRunning}
            data-testid="chat-input"
          />
          <div className="actions">
            <button
              type="submit"
              className="button secondary"
              disabled={busy || planJobRunning || !text.trim()}
              data-testid="send-message"
            >
              Send
            </button>
            <button
              type="button"
              className="button primary"
              onClick={props.onFinalize}
              disabled={busy || planJobRunning || !plan}
              data-testid="finalize"
            >
              Finalise the plan
            </button>
          </div>
          <p className="hint">
            Enter sends, Shift+Enter starts a new line. When the plan looks right, finalise it and
            the lessons get written.
          </p>
        </form>
        <ErrorBox error={props.error} onRetry={props.onRetry} />
      </aside>
    </div>
  );
}

function ChatHistory({ chat, pending }: { chat: ChatTurn[]; pending: string | null }) {
  const turns = chat.filter((t) => t.role === "user" || t.role === "assistant");
  const lastUser = [...turns].reverse().find((t) => t.role === "user");
  const showPending = pending && lastUser?.content !== pending;
  let planNumber = 0;
  if (turns.length === 0 && !showPending) {
    return <p className="muted small">Ask for changes here: topics to add or drop, more practice, a different order…</p>;
  }
  return (
    <ol className="chat" data-testid="chat" aria-label="Planning chat">
      {turns.map((turn) =>
        turn.role === "user" ? (
          <li key={turn.id} className="chat-turn user" data-testid="chat-user">
            <span className="chat-who">You</span>
            <p>{turn.content}</p>
          </li>
        ) : (
          <li key={turn.id} className="chat-turn assistant" data-testid="chat-assistant">
            <details>
              <summary>
                <span className="chat-who">Lectern</span> Plan, version {++planNumber}
              </summary>
              <Markdown source={turn.content} diagrams={false} />
            </details>
          </li>
        ),
      )}
      {showPending && (
        <li className="chat-turn user pending" data-testid="chat-user">
          <span className="chat-who">You</span>
          <p>{pending}</p>
        </li>
      )}
    </ol>
  );
}

interface GenerationProps {
  courseId: string;
  course: Course | null;
  stream: StreamState;
  status: string;
  error: ApiError | null;
  onRetry?: () => void;
}

function GenerationView({ courseId, course, stream, status, error, onRetry }: GenerationProps) {
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
  return (
    <section className="panel estimate" data-testid="estimate" aria-label="Estimate">
      <h2>What writing it takes</h2>
      <dl className="stats">
        <div>
          <dt>Model calls</dt>
          <dd>{formatNumber(estimate.calls)}</dd>
        </div>
        <div>
          <dt>Input tokens</dt>
          <dd>{formatNumber(estimate.input_tokens)}</dd>
        </div>
        <div>
          <dt>Output tokens</dt>
          <dd>{formatNumber(estimate.output_tokens)}</dd>
        </div>
        <div>
          <dt>Estimated cost</dt>
          <dd>{estimate.cost_usd === null ? "unknown" : formatUsd(estimate.cost_usd)}</dd>
        </div>
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
