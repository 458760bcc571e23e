import { useCallback, useEffect, useRef, useState } from "react";
import { getToken, withAccessToken } from "../api/client";
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

/**
 * Follow a job's events with an EventSource (token in the query string), handing each
 * parsed event to ``onEvent``. The stream is closed after a final event so the browser
 * does not reconnect to a finished job; ``reconnect`` opens it again from the start
 * (the reducer ignores events it already applied).
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
    const source = new Source(withAccessToken(eventsUrl, getToken()));
    let closed = false;
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
        source.close();
        setStatus("closed");
      }
      handler.current({ jobId, id: message.lastEventId, event: type, data, final, finalEvents });
    };
    const listeners = EVENT_TYPES.map((type) => [type, listen(type)] as const);
    for (const [type, fn] of listeners) source.addEventListener(type, fn as EventListener);
    source.onopen = () => {
      if (!closed) setStatus("open");
    };
    source.onerror = () => {
      if (closed) return;
      // CLOSED: the browser gave up (e.g. the server refused the request); otherwise it
      // reconnects by itself with Last-Event-ID
      setStatus(source.readyState === 2 ? "error" : "reconnecting");
    };
    return () => {
      closed = true;
      for (const [type, fn] of listeners) source.removeEventListener(type, fn as EventListener);
      source.close();
    };
  }, [jobId, eventsUrl, finalKey, generation]);

  const reconnect = useCallback(() => setGeneration((g) => g + 1), []);
  return { status, reconnect };
}
