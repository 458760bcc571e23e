import { useCallback, useEffect, useRef, useState } from "react";
import { streamToken, withAccessToken } from "../api/client";
import type { EventEnvelope } from "../api/types";
import { EVENT_TYPES, type JobEvent } from "./reducer";

export type StreamStatus = "idle" | "connecting" | "open" | "reconnecting" | "closed" | "error";

export interface JobRef {
  jobId: string;
  eventsUrl: string;
  finalEvents: readonly string[];
}

export interface StreamedEvent extends JobEvent {
  final: boolean;
  finalEvents: readonly string[];
}

/** A stream the browser gave up on after it had been open is reopened this often at most
 * (with a fresh stream token: the one it reconnected with may have expired). */
const MAX_REOPENS = 3;

/**
 * Follow a job's events with an EventSource, handing each parsed event to ``onEvent``.
 * EventSource cannot send headers, so the stream is opened with a short-lived stream
 * token of the job (never the bearer token, which would end up in URLs and logs). The
 * browser reconnects by itself with Last-Event-ID; once the token has expired such a
 * reconnect is refused, and the stream is reopened from the start with a fresh token
 * (the reducer ignores events it already applied). The stream is closed after a final
 * event so the browser does not reconnect to a finished job; ``reconnect`` opens it
 * again from the start.
 */
export function useJobStream(job: JobRef | null, onEvent: (event: StreamedEvent) => void) {
  const [status, setStatus] = useState<StreamStatus>("idle");
  const [generation, setGeneration] = useState(0);
  const handler = useRef(onEvent);
  handler.current = onEvent;

  const jobId = job?.jobId;
  const eventsUrl = job?.eventsUrl;
  const finalKey = job ? job.finalEvents.join(",") : "";

  useEffect(() => {
    if (!jobId || !eventsUrl) {
      setStatus("idle");
      return;
    }
    const finalEvents = finalKey.split(",").filter(Boolean);
    const Source = globalThis.EventSource;
    if (typeof Source !== "function") {
      setStatus("error");
      return;
    }
    let closed = false; // by us: unmounted, or the final event came
    let source: EventSource | null = null;
    let reopens = 0;
    setStatus("connecting");

    const listen = (type: string) => (message: MessageEvent) => {
      if (closed) return;
      let data: EventEnvelope<unknown>;
      try {
        data = JSON.parse(String(message.data)) as EventEnvelope<unknown>;
      } catch {
        return; // not ours: skip it
      }
      const final = finalEvents.includes(type);
      if (final) {
        closed = true;
        source?.close();
        setStatus("closed");
      }
      handler.current({ jobId, id: message.lastEventId, event: type, data, final, finalEvents });
    };
    const listeners = EVENT_TYPES.map((type) => [type, listen(type)] as const);
    const detach = (es: EventSource) => {
      for (const [type, fn] of listeners) es.removeEventListener(type, fn as EventListener);
      es.close();
    };

    const open = async () => {
      let token: string;
      try {
        token = await streamToken(jobId);
      } catch {
        if (!closed) setStatus("error"); // the job is gone, or the session ended
        return;
      }
      if (closed) return;
      const es = new Source(withAccessToken(eventsUrl, token));
      source = es;
      let opened = false;
      for (const [type, fn] of listeners) es.addEventListener(type, fn as EventListener);
      es.onopen = () => {
        opened = true;
        if (!closed) setStatus("open");
      };
      es.onerror = () => {
        if (closed) return;
        if (es.readyState !== 2) {
          setStatus("reconnecting"); // the browser reconnects by itself
          return;
        }
        // CLOSED: the browser gave up. After a working stream that is a reconnect the
        // server refused (an expired stream token): a fresh token, a fresh stream.
        detach(es);
        if (opened && reopens < MAX_REOPENS) {
          reopens += 1;
          setStatus("reconnecting");
          void open();
        } else {
          setStatus("error");
        }
      };
    };
    void open();
    return () => {
      closed = true;
      if (source) detach(source);
    };
  }, [jobId, eventsUrl, finalKey, generation]);

  const reconnect = useCallback(() => setGeneration((g) => g + 1), []);
  return { status, reconnect };
}
