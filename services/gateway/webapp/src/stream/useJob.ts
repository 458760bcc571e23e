import { useCallback, useReducer, useRef, useState } from "react";
import { failureOf, finalEventsFor, initialStreamState, streamReducer } from "./reducer";
import { useJobStream, type JobRef, type StreamedEvent } from "./useJobStream";

/** What a request that started a job answers with (HTTP 202). */
export interface AcceptedJob {
  job_id: string;
  events_url: string;
}

/** The job an accepted request started, followed until the final events of its kind. */
export function jobToFollow(accepted: AcceptedJob, kind: string, autoFinalize = false): JobRef {
  return { jobId: accepted.job_id, eventsUrl: accepted.events_url, finalEvents: finalEventsFor(kind, autoFinalize) };
}

/**
 * One job at a time, started from a part of a page (a revision, a new exercise): its
 * stream's state, whether it still runs and how it failed. ``onEvent`` sees every event
 * after it is applied.
 */
export function useJob(onEvent?: (ev: StreamedEvent) => void) {
  const [job, setJob] = useState<JobRef | null>(null);
  const [stream, dispatch] = useReducer(streamReducer, initialStreamState);
  const handler = useRef(onEvent);
  handler.current = onEvent;

  const applied = useCallback((ev: StreamedEvent) => {
    dispatch({ type: "event", ...ev });
    handler.current?.(ev);
  }, []);
  const { status, reconnect } = useJobStream(job, applied);

  /** Follow the job ``accepted`` started, forgetting the previous one's events. */
  const start = useCallback((accepted: AcceptedJob, kind: string) => {
    dispatch({ type: "reset" });
    setJob(jobToFollow(accepted, kind));
  }, []);

  const running = job !== null && !stream.finished[job.jobId];
  return { stream, status, reconnect, running, failed: failureOf(stream, job), start };
}
