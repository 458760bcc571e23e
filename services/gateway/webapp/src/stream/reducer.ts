// Folding a job's SSE events into what the pages show.
//
// Events carry a per-job sequence number (the SSE `id:`). A reconnecting EventSource
// sends Last-Event-ID and gets only later events, and a page that reopens a running
// job's stream from the start gets every event again: either way an event whose id
// was already applied for that job is ignored, so the state is rebuilt exactly once.

import type {
  AssessmentReadyPayload,
  ChunkPayload,
  CourseReadyPayload,
  EventEnvelope,
  ExerciseReadyPayload,
  JobFailedPayload,
  LessonRevisedPayload,
  LessonWrittenPayload,
  PlanFinalizedPayload,
  PlanProposedPayload,
  ProgressPayload,
} from "../api/types";

/** Event types the app listens to (``llm.call_completed`` is deliberately not one). */
export const EVENT_TYPES = [
  "job.chunk",
  "course.plan_proposed",
  "course.plan_finalized",
  "lesson.written",
  "assessment.ready",
  "course.progress",
  "course.ready",
  "lesson.revised",
  "exercise.ready",
  "source.progress",
  "source.ingested",
  "job.failed",
] as const;

/** After one of these the server ends the stream: close it so it does not reconnect. */
export const DEFAULT_FINAL_EVENTS: readonly string[] = [
  "course.plan_proposed",
  "course.ready",
  "lesson.revised",
  "exercise.ready",
  "source.ingested",
  "job.failed",
];

/** Final events for a job of the given kind (a plan job that runs on ends at course.ready). */
export function finalEventsFor(kind: string | undefined, autoFinalize = false): string[] {
  switch (kind) {
    case "plan_course":
      return autoFinalize
        ? ["course.ready", "job.failed"]
        : ["course.plan_proposed", "job.failed"];
    case "refine_plan":
      return ["course.plan_proposed", "job.failed"];
    case "finalize":
      return ["course.ready", "job.failed"];
    case "revise_lesson":
      return ["lesson.revised", "job.failed"];
    case "generate_exercise":
      return ["exercise.ready", "job.failed"];
    case "ingest_source":
      return ["source.ingested", "job.failed"];
    default:
      return [...DEFAULT_FINAL_EVENTS];
  }
}

export interface StepText {
  jobId: string;
  attempt: number;
  text: string;
}

export interface StreamState {
  /** Highest event id applied, per job. */
  lastId: Record<string, number>;
  /** Jobs whose final event was applied, with that event's type. */
  finished: Record<string, string>;
  /** Streamed text per step (``welcome_plan``, ``refine_plan``, ``lesson:N``, ``revise:N``). */
  steps: Record<string, StepText>;
  plan: string | null;
  /** Bumped on every proposed plan (pages refetch the chat then). */
  plansProposed: number;
  finalized: PlanFinalizedPayload | null;
  lessons: Record<number, LessonWrittenPayload>;
  assessments: Record<number, AssessmentReadyPayload>;
  progress: ProgressPayload | null;
  ready: CourseReadyPayload | null;
  revised: LessonRevisedPayload | null;
  exercise: ExerciseReadyPayload | null;
  failed: (JobFailedPayload & { jobId: string }) | null;
}

export const initialStreamState: StreamState = {
  lastId: {},
  finished: {},
  steps: {},
  plan: null,
  plansProposed: 0,
  finalized: null,
  lessons: {},
  assessments: {},
  progress: null,
  ready: null,
  revised: null,
  exercise: null,
  failed: null,
};

export interface JobEvent {
  jobId: string;
  /** The SSE ``id:`` (a sequence number, as text). */
  id: string;
  /** The SSE ``event:`` type. */
  event: string;
  data: EventEnvelope<unknown>;
}

export type StreamAction =
  | ({ type: "event"; finalEvents?: readonly string[] } & JobEvent)
  | { type: "clearFailure" }
  | { type: "reset" };

function without<T>(record: Record<string, T>, ...keys: string[]): Record<string, T> {
  if (!keys.some((k) => k in record)) return record;
  const copy = { ...record };
  for (const key of keys) delete copy[key];
  return copy;
}

function applyChunk(state: StreamState, jobId: string, chunk: ChunkPayload): StreamState {
  if (!chunk || typeof chunk.step !== "string" || typeof chunk.text !== "string") return state;
  const attempt = typeof chunk.attempt === "number" ? chunk.attempt : 1;
  const held = state.steps[chunk.step];
  let next: StepText;
  if (!held || held.jobId !== jobId || attempt > held.attempt) {
    // a new step, a new job, or a retry: the earlier attempt was cut, start over
    next = { jobId, attempt, text: chunk.text };
  } else if (attempt < held.attempt) {
    return state; // a late piece of an attempt already abandoned
  } else {
    next = { ...held, text: held.text + chunk.text };
  }
  return { ...state, steps: { ...state.steps, [chunk.step]: next } };
}

/** A lesson event's payload without the lesson's text (pages load the lesson itself). */
function withoutMarkdown<T extends { markdown?: string }>(payload: T): Omit<T, "markdown"> {
  const { markdown: _dropped, ...lesson } = payload;
  void _dropped;
  return lesson;
}

/** Whether this event (by its id) was already applied for its job. */
export function isDuplicate(state: StreamState, jobId: string, id: string): boolean {
  const seq = Number(id);
  if (!id || !Number.isFinite(seq)) return false;
  return seq <= (state.lastId[jobId] ?? 0);
}

export function applyEvent(state: StreamState, ev: JobEvent, finalEvents?: readonly string[]) {
  if (isDuplicate(state, ev.jobId, ev.id)) return state;
  const seq = Number(ev.id);
  let next: StreamState = Number.isFinite(seq) && ev.id
    ? { ...state, lastId: { ...state.lastId, [ev.jobId]: seq } }
    : state;
  const payload: unknown = ev.data && typeof ev.data === "object" ? ev.data.payload : undefined;
  if (!payload) return next;

  switch (ev.event) {
    case "job.chunk":
      next = applyChunk(next, ev.jobId, payload as ChunkPayload);
      break;
    case "course.plan_proposed":
      next = {
        ...next,
        plan: (payload as PlanProposedPayload).plan_markdown,
        plansProposed: next.plansProposed + 1,
        steps: without(next.steps, "welcome_plan", "refine_plan"),
      };
      break;
    case "course.plan_finalized":
      next = { ...next, finalized: payload as PlanFinalizedPayload };
      break;
    case "lesson.written": {
      const lesson = withoutMarkdown(payload as LessonWrittenPayload);
      next = {
        ...next,
        lessons: { ...next.lessons, [lesson.order]: lesson },
        steps: without(next.steps, `lesson:${lesson.order}`),
      };
      break;
    }
    case "assessment.ready": {
      const p = payload as AssessmentReadyPayload;
      next = { ...next, assessments: { ...next.assessments, [p.order]: p } };
      break;
    }
    case "course.progress":
      next = { ...next, progress: payload as ProgressPayload };
      break;
    case "course.ready":
      next = { ...next, ready: payload as CourseReadyPayload };
      break;
    case "lesson.revised": {
      const lesson = withoutMarkdown(payload as LessonRevisedPayload);
      next = { ...next, revised: lesson, steps: without(next.steps, `revise:${lesson.order}`) };
      break;
    }
    case "exercise.ready":
      next = { ...next, exercise: payload as ExerciseReadyPayload };
      break;
    case "job.failed":
      next = { ...next, failed: { ...(payload as JobFailedPayload), jobId: ev.jobId } };
      break;
    default:
      break; // llm.call_completed and anything new: only the id counts
  }
  if ((finalEvents ?? DEFAULT_FINAL_EVENTS).includes(ev.event)) {
    next = { ...next, finished: { ...next.finished, [ev.jobId]: ev.event } };
  }
  return next;
}

export function streamReducer(state: StreamState, action: StreamAction): StreamState {
  switch (action.type) {
    case "event":
      return applyEvent(state, action, action.finalEvents);
    case "clearFailure":
      return state.failed ? { ...state, failed: null } : state;
    case "reset":
      return initialStreamState;
    default:
      return state;
  }
}

/** The failure of ``job``, when it is that job that failed. */
export function failureOf(state: StreamState, job: { jobId: string } | null) {
  return state.failed && job && state.failed.jobId === job.jobId ? state.failed : null;
}

/** The text streamed so far for a step, or null. */
export function stepText(state: StreamState, step: string): string | null {
  return state.steps[step]?.text ?? null;
}
