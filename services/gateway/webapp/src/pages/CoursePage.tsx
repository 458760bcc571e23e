import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import { Link, useLocation, useParams } from "react-router-dom";
import { ApiError, toApiError } from "../api/client";
import { courses } from "../api/endpoints";
import type { Course } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { Loading } from "../components/Loading";
import { StatusBadge } from "../components/StatusBadge";
import { StreamNotice } from "../components/StreamNotice";
import { forgetJob, recallJob, type PendingJob } from "../lib/pendingJob";
import { useAction } from "../lib/useAction";
import { useTitle } from "../lib/useTitle";
import { failureOf, initialStreamState, isDuplicate, streamReducer, type StreamState } from "../stream/reducer";
import { jobToFollow, type AcceptedJob } from "../stream/useJob";
import { useJobStream, type JobRef, type StreamedEvent } from "../stream/useJobStream";
import { GenerationView } from "./GenerationView";
import { PlanningView } from "./PlanningView";
import { SourcesPanel } from "./SourcesPanel";

const PLAN_JOBS = new Set(["plan_course", "refine_plan"]);
const COURSE_JOBS = new Set(["plan_course", "refine_plan", "finalize"]);
const POLL_MS = 3000;

interface FollowedJob extends JobRef {
  kind: string;
}

function follow(job: AcceptedJob & { kind: string }, auto = false): FollowedJob {
  return { ...jobToFollow(job, job.kind, auto), kind: job.kind };
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
  const { busy, error: actionError, run } = useAction();
  const [retryAction, setRetryAction] = useState<(() => void) | null>(null);

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
  const jobFailed = failureOf(stream, job);
  const planJobRunning = (job !== null && PLAN_JOBS.has(job.kind) && !jobDone) || stillPlanning;

  /** A request of the page's own; when it fails, ``retry`` is offered with the error. */
  function request(action: () => Promise<unknown>, retry: () => void) {
    setRetryAction(null);
    return run(action, { onError: () => setRetryAction(() => retry) });
  }

  /** Resolves to whether the message was accepted. */
  function sendMessage(text: string): Promise<boolean> {
    return request(
      async () => {
        const accepted = await courses.message(id, text);
        setPendingMessage(text);
        startFollowing(follow({ ...accepted, kind: "refine_plan" }));
      },
      () => void sendMessage(text),
    );
  }

  async function finalize() {
    await request(
      async () => {
        const accepted = await courses.finalize(id);
        startFollowing(follow({ ...accepted, kind: "finalize" }));
        setCourse((c) => (c ? { ...c, status: "generating" } : c));
      },
      () => void finalize(),
    );
  }

  // the failed job's step, sent again (only for the steps this page started)
  const retryFailed = !jobFailed?.retryable
    ? null
    : job?.kind === "refine_plan" && pendingMessage
      ? () => void sendMessage(pendingMessage)
      : job?.kind === "finalize"
        ? () => void finalize()
        : null;
  const failedView = jobFailed ? (
    <div className="error-box" role="alert" data-testid="job-failed">
      <strong>This step did not finish.</strong>
      <p>{jobFailed.reason}</p>
      {retryFailed && (
        <button
          type="button"
          className="button secondary"
          data-testid="retry"
          onClick={() => {
            dispatch({ type: "clearFailure" });
            retryFailed();
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
  const shared = { course, stream, error: actionError, onRetry: retryAction ?? undefined };

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
        <>
          <PlanningView
            {...shared}
            planJobRunning={planJobRunning}
            busy={busy}
            pendingMessage={pendingMessage}
            onSend={sendMessage}
            onFinalize={finalize}
          />
          {course && <SourcesPanel courseId={id} />}
        </>
      ) : (
        <GenerationView {...shared} courseId={id} status={status} />
      )}
    </section>
  );
}
