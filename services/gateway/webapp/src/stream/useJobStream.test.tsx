import { act, render, screen, waitFor } from "@testing-library/react";
import { useCallback, useReducer } from "react";
import { beforeEach, describe, expect, it } from "vitest";
import { setToken } from "../api/client";
import { installEventSource, json, mockFetch, MockEventSource } from "../test/helpers";
import { finalEventsFor, initialStreamState, streamReducer } from "./reducer";
import { useJobStream, type JobRef, type StreamedEvent } from "./useJobStream";

function Follower({ job }: { job: JobRef | null }) {
  const [state, dispatch] = useReducer(streamReducer, initialStreamState);
  const onEvent = useCallback((ev: StreamedEvent) => dispatch({ type: "event", ...ev }), []);
  const { status } = useJobStream(job, onEvent);
  return (
    <div>
      <p data-testid="status">{status}</p>
      <p data-testid="text">{state.steps.welcome_plan?.text ?? ""}</p>
      <p data-testid="plan">{state.plan ?? ""}</p>
    </div>
  );
}

const job: JobRef = {
  jobId: "j1",
  eventsUrl: "/v1/jobs/j1/events",
  finalEvents: finalEventsFor("plan_course"),
};
const BEARER = "tok/en+1";

/** The gateway's stream-token answers: a new token each time (s1, s2, ...). */
function streamTokens(refuse = false) {
  let issued = 0;
  return mockFetch((url, init) => {
    if (!/^\/v1\/jobs\/[^/]+\/stream-token$/.test(url) || init.method !== "POST") return undefined;
    if (refuse) return json({ detail: "job j1 not found" }, 404);
    issued += 1;
    return json({ token: `s${issued}`, expires_in: 120 });
  });
}

function headerOf(init: unknown, name: string): string | undefined {
  return ((init as RequestInit).headers as Record<string, string>)[name];
}

describe("useJobStream", () => {
  beforeEach(() => {
    installEventSource();
    setToken(BEARER);
  });

  it("opens the events URL with a stream token, applies chunks once and closes after the final event", async () => {
    const fetchMock = streamTokens();
    render(<Follower job={job} />);
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(1));
    const source = MockEventSource.latest();
    // the stream token is asked for with the bearer token; only the stream token is in the URL
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe("/v1/jobs/j1/stream-token");
    expect(headerOf(init, "Authorization")).toBe(`Bearer ${BEARER}`);
    expect(source.url).toBe("/v1/jobs/j1/events?access_token=s1");
    expect(source.url).not.toContain(encodeURIComponent(BEARER));

    act(() => {
      source.open();
      source.emit("job.chunk", 1, { step: "welcome_plan", text: "# Pl", attempt: 1, index: 0 });
      source.emit("job.chunk", 2, { step: "welcome_plan", text: "an", attempt: 1, index: 1 });
      source.emit("job.chunk", 2, { step: "welcome_plan", text: "an", attempt: 1, index: 1 }); // duplicate id
      source.emit("llm.call_completed", 3, {});
    });
    expect(screen.getByTestId("status")).toHaveTextContent("open");
    expect(screen.getByTestId("text")).toHaveTextContent("# Plan");
    expect(source.closed).toBe(false);

    act(() => source.emit("course.plan_proposed", 4, { course_id: "c", plan_markdown: "# The plan" }));
    expect(source.closed).toBe(true);
    expect(screen.getByTestId("status")).toHaveTextContent("closed");
    expect(screen.getByTestId("plan")).toHaveTextContent("# The plan");
  });

  it("reopens with a fresh stream token when a reconnect is refused, without repeating events", async () => {
    streamTokens();
    render(<Follower job={job} />);
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(1));
    const first = MockEventSource.latest();
    act(() => {
      first.open();
      first.emit("job.chunk", 1, { step: "welcome_plan", text: "# Pl", attempt: 1, index: 0 });
    });
    // later the connection drops; the browser's reconnect carries the expired token: refused
    act(() => first.fail(MockEventSource.CONNECTING));
    expect(screen.getByTestId("status")).toHaveTextContent("reconnecting");
    act(() => first.fail(MockEventSource.CLOSED));
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(2));
    const second = MockEventSource.latest();
    expect(second.url).toBe("/v1/jobs/j1/events?access_token=s2");
    act(() => {
      second.open();
      // the new stream starts from the beginning: event 1 again, then the rest
      second.emit("job.chunk", 1, { step: "welcome_plan", text: "# Pl", attempt: 1, index: 0 });
      second.emit("job.chunk", 2, { step: "welcome_plan", text: "an", attempt: 1, index: 1 });
    });
    expect(screen.getByTestId("text")).toHaveTextContent(/^# Plan$/);
    expect(screen.getByTestId("status")).toHaveTextContent("open");
    act(() => first.emit("job.chunk", 3, { step: "welcome_plan", text: "!", attempt: 1, index: 2 }));
    expect(screen.getByTestId("text")).toHaveTextContent(/^# Plan$/); // the old one is detached
  });

  it("reports a stream the browser gave up on before it opened, and closes it on unmount", async () => {
    streamTokens();
    const { unmount } = render(<Follower job={job} />);
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(1));
    const source = MockEventSource.latest();
    act(() => source.fail(MockEventSource.CONNECTING));
    expect(screen.getByTestId("status")).toHaveTextContent("reconnecting");
    act(() => source.fail(MockEventSource.CLOSED));
    expect(screen.getByTestId("status")).toHaveTextContent("error");
    expect(MockEventSource.instances).toHaveLength(1); // refused from the start: no retry loop

    render(<Follower job={{ ...job, jobId: "j2", eventsUrl: "/v1/jobs/j2/events?x=1" }} />);
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(2));
    const second = MockEventSource.latest();
    expect(second.url).toBe("/v1/jobs/j2/events?x=1&access_token=s2");
    unmount();
    expect(source.closed).toBe(true);
  });

  it("opens no stream when no stream token is given (another user's job, or a session that ended)", async () => {
    streamTokens(true);
    render(<Follower job={job} />);
    await waitFor(() => expect(screen.getByTestId("status")).toHaveTextContent("error"));
    expect(MockEventSource.instances).toHaveLength(0);
  });

  it("opens nothing without a job", () => {
    const fetchMock = streamTokens();
    render(<Follower job={null} />);
    expect(MockEventSource.instances).toHaveLength(0);
    expect(fetchMock).not.toHaveBeenCalled();
    expect(screen.getByTestId("status")).toHaveTextContent("idle");
  });
});
