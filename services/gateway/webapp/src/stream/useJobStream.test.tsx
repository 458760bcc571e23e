import { act, render, screen } from "@testing-library/react";
import { useCallback, useReducer } from "react";
import { beforeEach, describe, expect, it } from "vitest";
import { setToken } from "../api/client";
import { installEventSource, MockEventSource } from "../test/helpers";
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

describe("useJobStream", () => {
  beforeEach(() => {
    installEventSource();
    setToken("tok/en+1");
  });

  it("opens the events URL with the token, applies chunks once and closes after the final event", () => {
    render(<Follower job={job} />);
    const source = MockEventSource.latest();
    expect(source.url).toBe("/v1/jobs/j1/events?access_token=tok%2Fen%2B1");

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

  it("reports a stream the browser gave up on, and closes it on unmount", () => {
    const { unmount } = render(<Follower job={job} />);
    const source = MockEventSource.latest();
    act(() => source.fail(MockEventSource.CONNECTING));
    expect(screen.getByTestId("status")).toHaveTextContent("reconnecting");
    act(() => source.fail(MockEventSource.CLOSED));
    expect(screen.getByTestId("status")).toHaveTextContent("error");

    render(<Follower job={{ ...job, jobId: "j2", eventsUrl: "/v1/jobs/j2/events?x=1" }} />);
    const second = MockEventSource.latest();
    expect(second.url).toBe("/v1/jobs/j2/events?x=1&access_token=tok%2Fen%2B1");
    unmount();
    expect(source.closed).toBe(true);
  });

  it("opens nothing without a job", () => {
    render(<Follower job={null} />);
    expect(MockEventSource.instances).toHaveLength(0);
    expect(screen.getByTestId("status")).toHaveTextContent("idle");
  });
});
