import { act, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { beforeEach, describe, expect, it } from "vitest";
import type { Course } from "../api/types";
import { setToken } from "../api/client";
import { bodyOf, installEventSource, json, mockFetch, MockEventSource } from "../test/helpers";
import { CoursePage } from "./CoursePage";

const modules = [1, 2].map((order) => ({
  module_id: `m${order}`,
  order,
  title: `Module ${order}`,
  description: `About ${order}`,
  learning_objectives: [`Do ${order}`],
  estimated_hours: 2,
}));

function course(over: Partial<Course> = {}): Course {
  return {
    course_id: "c1",
    title: null,
    status: "planning",
    profile: { topic: "Asyncio" },
    plan: "# Plan v1",
    chat: [{ id: "a1", seq: 1, role: "assistant", kind: "plan", content: "# Plan v1", created_at: "2025-01-01T00:00:00Z" }],
    modules: [],
    progress: null,
    jobs: [],
    ...over,
  };
}

function renderAt(state?: unknown) {
  return render(
    <MemoryRouter initialEntries={[{ pathname: "/courses/c1", state }]}>
      <Routes>
        <Route path="/courses/:id" element={<CoursePage />} />
      </Routes>
    </MemoryRouter>,
  );
}

describe("CoursePage", () => {
  beforeEach(() => {
    installEventSource();
    setToken("t");
  });

  it("streams the welcome plan, refines it in the chat, then follows generation to ready", async () => {
    let current: Course | null = null; // null: still being planned (409)
    const fetchMock = mockFetch((url, init) => {
      const method = init.method ?? "GET";
      if (url === "/v1/courses/c1" && method === "GET") {
        return current ? json(current) : json({ detail: "course c1 is still being planned" }, 409);
      }
      if (url === "/v1/courses/c1/messages") return json({ job_id: "j2", events_url: "/v1/jobs/j2/events" }, 202);
      if (url === "/v1/courses/c1/finalize") return json({ job_id: "j3", events_url: "/v1/jobs/j3/events" }, 202);
      if (url === "/v1/courses/c1/recommendation") {
        return json({ action: "take_quiz", lesson: { order: 1, title: "Module 1" }, reason: "Start with the quiz.", evidence: [] });
      }
      return undefined;
    });

    renderAt({ job: { job_id: "j1", events_url: "/v1/jobs/j1/events", kind: "plan_course" } });
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(1));
    const plan = MockEventSource.latest();
    expect(plan.url).toBe("/v1/jobs/j1/events?access_token=stream-j1"); // never the bearer token

    act(() => {
      plan.emit("job.chunk", 1, { step: "welcome_plan", text: "# Your ", attempt: 1, index: 0 });
      plan.emit("job.chunk", 2, { step: "welcome_plan", text: "plan\n\n- item", attempt: 1, index: 1 });
    });
    expect(screen.getByTestId("plan").querySelector("h1")).toHaveTextContent("Your plan");
    expect(screen.getByTestId("finalize")).toBeDisabled();

    current = course();
    act(() => plan.emit("course.plan_proposed", 3, { course_id: "c1", plan_markdown: "# Plan v1" }));
    expect(plan.closed).toBe(true);
    await waitFor(() => expect(screen.getByTestId("finalize")).toBeEnabled());
    expect(screen.getByTestId("plan")).toHaveTextContent("Plan v1");

    // refine: Enter sends
    await userEvent.type(screen.getByTestId("chat-input"), "Add testing{Enter}");
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(2));
    expect(bodyOf(fetchMock, fetchMock.mock.calls.findIndex(([u]) => u === "/v1/courses/c1/messages"))).toEqual({ text: "Add testing" });
    expect(screen.getByTestId("chat")).toHaveTextContent("Add testing");
    const refine = MockEventSource.latest();
    act(() => {
      refine.emit("job.chunk", 1, { step: "refine_plan", text: "# Plan v2 streaming", attempt: 1, index: 0 });
    });
    expect(screen.getByTestId("plan")).toHaveTextContent("Plan v2 streaming");
    current = course({
      plan: "# Plan v2",
      chat: [
        ...course().chat,
        { id: "u1", seq: 2, role: "user", kind: "request", content: "Add testing", created_at: "2025-01-01T00:01:00Z" },
        { id: "a2", seq: 3, role: "assistant", kind: "plan", content: "# Plan v2", created_at: "2025-01-01T00:02:00Z" },
      ],
    });
    act(() => refine.emit("course.plan_proposed", 2, { course_id: "c1", plan_markdown: "# Plan v2" }));
    await waitFor(() => expect(screen.getByTestId("plan")).toHaveTextContent("Plan v2"));

    // finalise: estimate, lessons as they land, progress, ready
    await waitFor(() => expect(screen.getByTestId("finalize")).toBeEnabled());
    await userEvent.click(screen.getByTestId("finalize"));
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(3));
    const gen = MockEventSource.latest();
    current = course({ status: "generating", title: "Asyncio in practice", modules: modules.map((m) => ({ ...m, lesson_status: "pending", assessment_status: "pending" })) });
    act(() =>
      gen.emit("course.plan_finalized", 1, {
        course_id: "c1",
        title: "Asyncio in practice",
        modules,
        estimate: { calls: 4, input_tokens: 12000, output_tokens: 8000, cost_usd: 0.42, model: "gpt-x" },
      }),
    );
    expect(screen.getByTestId("estimate")).toHaveTextContent("$0.42");
    expect(screen.getByTestId("estimate")).toHaveTextContent("12,000");
    await waitFor(() => expect(screen.getByTestId("course-status")).toHaveTextContent("generating"));
    expect(screen.queryByTestId("lesson-link-1")).toBeNull();

    act(() => {
      gen.emit("job.chunk", 2, { step: "lesson:1", text: "# Module 1", attempt: 1, index: 0 });
      gen.emit("lesson.written", 3, { course_id: "c1", module_id: "m1", lesson_id: "l1", order: 1, title: "Module 1", version: 1, markdown: "# M1" });
      gen.emit("course.progress", 4, { done: 1, total: 4, step: "lesson", lessons_done: 1, assessments_done: 0 });
    });
    expect(screen.getByTestId("lesson-link-1")).toHaveAttribute("href", "/courses/c1/lessons/1");
    expect(screen.queryByTestId("lesson-link-2")).toBeNull();
    expect(screen.getByTestId("progress")).toHaveAttribute("aria-valuenow", "1");
    expect(screen.getByTestId("progress")).toHaveTextContent("1 / 4");

    current = course({
      status: "ready",
      title: "Asyncio in practice",
      modules: modules.map((m) => ({ ...m, lesson_status: "written", lesson_id: `l${m.order}`, assessment_status: "ready", quiz_id: `q${m.order}`, exercise_id: null })),
      progress: { done: 4, total: 4, lessons_done: 2, assessments_done: 2 },
    });
    act(() => {
      gen.emit("lesson.written", 5, { course_id: "c1", module_id: "m2", lesson_id: "l2", order: 2, title: "Module 2", version: 1, markdown: "# M2" });
      gen.emit("course.progress", 6, { done: 4, total: 4, step: "assessment", lessons_done: 2, assessments_done: 2 });
      gen.emit("course.ready", 7, { course_id: "c1", title: "Asyncio in practice", modules: [] });
    });
    expect(gen.closed).toBe(true);
    expect(screen.getByTestId("course-status")).toHaveTextContent("ready");
    expect(screen.getByTestId("progress")).toHaveTextContent("4 / 4");
    expect(screen.getByTestId("lesson-link-2")).toBeInTheDocument();
    expect(screen.getByTestId("export-markdown")).toBeInTheDocument();
    expect(screen.getByTestId("export-html")).toBeInTheDocument();
    expect(await screen.findByTestId("recommendation")).toHaveTextContent("Take the quiz of lesson 1");
  });

  it("resumes a running job after a reload, rebuilding from the start without doubling text", async () => {
    mockFetch((url) =>
      url === "/v1/courses/c1"
        ? json(course({ jobs: [{ job_id: "j9", kind: "refine_plan", status: "running", events_url: "/v1/jobs/j9/events", created_at: "" }] }))
        : undefined,
    );
    renderAt();
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(1));
    const source = MockEventSource.latest();
    act(() => {
      source.emit("job.chunk", 1, { step: "refine_plan", text: "# Again", attempt: 1, index: 0 });
      source.emit("job.chunk", 1, { step: "refine_plan", text: "# Again", attempt: 1, index: 0 });
      source.emit("job.chunk", 2, { step: "refine_plan", text: " and again", attempt: 1, index: 1 });
    });
    expect(screen.getByTestId("plan").querySelector("h1")?.textContent).toBe("Again and again");
    expect(screen.getByTestId("chat-input")).toBeDisabled();
  });

  it("says why a step failed", async () => {
    mockFetch((url) =>
      url === "/v1/courses/c1"
        ? json(course({ jobs: [{ job_id: "j9", kind: "refine_plan", status: "running", events_url: "/v1/jobs/j9/events", created_at: "" }] }))
        : undefined,
    );
    renderAt();
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(1));
    act(() => MockEventSource.latest().emit("job.failed", 1, { reason: "The model service is unavailable.", retryable: true }));
    expect(MockEventSource.latest().closed).toBe(true);
    expect(await screen.findByTestId("job-failed")).toHaveTextContent("The model service is unavailable.");
  });

  it("shows why the welcome plan failed even when the course cannot be read", async () => {
    let failed = false;
    mockFetch((url) =>
      url === "/v1/courses/c1"
        ? failed
          ? json({ detail: "course c1 not found" }, 404)
          : json({ detail: "course c1 is still being planned" }, 409)
        : undefined,
    );
    renderAt({ job: { job_id: "j1", events_url: "/v1/jobs/j1/events", kind: "plan_course" } });
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(1));
    failed = true;
    act(() => MockEventSource.latest().emit("job.failed", 1, { reason: "No model could write the plan.", retryable: false }));
    expect(await screen.findByTestId("job-failed")).toHaveTextContent("No model could write the plan.");
    expect(screen.getByRole("link", { name: "start a new course" })).toHaveAttribute("href", "/courses/new");
  });
});
