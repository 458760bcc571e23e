import { describe, expect, it } from "vitest";
import {
  applyEvent,
  finalEventsFor,
  initialStreamState,
  streamReducer,
  type JobEvent,
  type StreamState,
} from "./reducer";

const chunk = (id: number, step: string, text: string, attempt = 1, jobId = "j1"): JobEvent => ({
  jobId,
  id: String(id),
  event: "job.chunk",
  data: { payload: { step, text, attempt, index: id } },
});

const fold = (events: JobEvent[], state: StreamState = initialStreamState) =>
  events.reduce((s, ev) => streamReducer(s, { type: "event", ...ev }), state);

describe("stream reducer", () => {
  it("appends chunks per step", () => {
    const s = fold([
      chunk(1, "welcome_plan", "# Plan"),
      chunk(2, "lesson:1", "Intro"),
      chunk(3, "welcome_plan", "\n\n## Module 1"),
      chunk(4, "lesson:1", " to it"),
    ]);
    expect(s.steps.welcome_plan.text).toBe("# Plan\n\n## Module 1");
    expect(s.steps["lesson:1"].text).toBe("Intro to it");
  });

  it("discards a step's text when a higher attempt starts, and ignores late pieces of the old one", () => {
    const s = fold([
      chunk(1, "welcome_plan", "first try that was cut"),
      chunk(2, "lesson:2", "untouched"),
      chunk(3, "welcome_plan", "Second", 2),
      chunk(4, "welcome_plan", " try", 2),
      chunk(5, "welcome_plan", " stale", 1),
    ]);
    expect(s.steps.welcome_plan).toMatchObject({ attempt: 2, text: "Second try" });
    expect(s.steps["lesson:2"].text).toBe("untouched");
  });

  it("ignores an event whose id was already applied (reconnect or replay)", () => {
    const once = fold([chunk(1, "welcome_plan", "A"), chunk(2, "welcome_plan", "B")]);
    const again = fold([chunk(1, "welcome_plan", "A"), chunk(2, "welcome_plan", "B"), chunk(3, "welcome_plan", "C")], once);
    expect(again.steps.welcome_plan.text).toBe("ABC");
    expect(again.lastId.j1).toBe(3);
    // the same object back: nothing re-rendered for a duplicate
    expect(streamReducer(again, { type: "event", ...chunk(2, "welcome_plan", "B") })).toBe(again);
  });

  it("keeps ids per job: the same sequence number in another job is new", () => {
    const s = fold([chunk(1, "refine_plan", "old", 1, "j1"), chunk(1, "refine_plan", "new", 1, "j2")]);
    expect(s.steps.refine_plan).toMatchObject({ jobId: "j2", text: "new" });
  });

  it("replaces the streamed plan with the proposed one and marks the plan job finished", () => {
    const s = fold([
      chunk(1, "welcome_plan", "# Pla"),
      { jobId: "j1", id: "2", event: "llm.call_completed", data: { payload: { tokens: 5 } } },
      { jobId: "j1", id: "3", event: "course.plan_proposed", data: { payload: { course_id: "c", plan_markdown: "# Plan\nfull" } } },
    ]);
    expect(s.plan).toBe("# Plan\nfull");
    expect(s.steps.welcome_plan).toBeUndefined();
    expect(s.plansProposed).toBe(1);
    expect(s.finished.j1).toBe("course.plan_proposed");
  });

  it("collects lessons, assessments and progress, and finishes at course.ready", () => {
    const s = fold([
      { jobId: "f", id: "1", event: "course.plan_finalized", data: { payload: { course_id: "c", title: "T", modules: [], estimate: { calls: 2, input_tokens: 10, output_tokens: 20, cost_usd: null, model: "m" } } } },
      chunk(2, "lesson:1", "text", 1, "f"),
      { jobId: "f", id: "3", event: "lesson.written", data: { payload: { course_id: "c", module_id: "m1", lesson_id: "l1", order: 1, title: "One", version: 1, markdown: "# One" } } },
      { jobId: "f", id: "4", event: "course.progress", data: { payload: { done: 1, total: 4, step: "lesson" } } },
      { jobId: "f", id: "5", event: "assessment.ready", data: { payload: { course_id: "c", lesson_id: "l1", order: 1, quiz_id: "q1", multiple_choice: 3, open_questions: 1, exercise: null, exercise_note: "" } } },
    ]);
    expect(s.finalized?.estimate.calls).toBe(2);
    expect(s.lessons[1]).toMatchObject({ title: "One", lesson_id: "l1" });
    expect(s.lessons[1]).not.toHaveProperty("markdown");
    expect(s.steps["lesson:1"]).toBeUndefined();
    expect(s.assessments[1].quiz_id).toBe("q1");
    expect(s.progress).toMatchObject({ done: 1, total: 4 });
    expect(s.finished.f).toBeUndefined();
    const done = applyEvent(s, { jobId: "f", id: "6", event: "course.ready", data: { payload: { course_id: "c", title: "T", modules: [] } } }, finalEventsFor("finalize"));
    expect(done.ready?.title).toBe("T");
    expect(done.finished.f).toBe("course.ready");
  });

  it("records a failure with its reason", () => {
    const s = fold([{ jobId: "j", id: "1", event: "job.failed", data: { payload: { reason: "The model is down.", retryable: true } } }]);
    expect(s.failed).toMatchObject({ reason: "The model is down.", retryable: true, jobId: "j" });
    expect(s.finished.j).toBe("job.failed");
  });

  it("knows each job kind's final events", () => {
    expect(finalEventsFor("plan_course")).toEqual(["course.plan_proposed", "job.failed"]);
    expect(finalEventsFor("plan_course", true)).toEqual(["course.ready", "job.failed"]);
    expect(finalEventsFor("finalize")).toContain("course.ready");
    expect(finalEventsFor("revise_lesson")).toContain("lesson.revised");
    expect(finalEventsFor("generate_exercise")).toContain("exercise.ready");
  });
});
