import { act, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { beforeEach, describe, expect, it } from "vitest";
import type { Assessment, Exercise } from "../api/types";
import { setToken } from "../api/client";
import { bodyOf, installEventSource, json, mockFetch, MockEventSource } from "../test/helpers";
import { codeFence, describeRun, ExercisePage } from "./ExercisePage";

const first: Exercise = {
  exercise_id: "e1",
  title: "Sum the squares",
  difficulty: "standard",
  statement: "Write `sum_squares(n)`.\n\n<script>alert(1)</script>",
  starter_code: "def sum_squares(n):\n    pass\n",
  visible_tests: "def test_small():\n    assert sum_squares(2) == 5\n",
  hidden_test_count: 2,
  hints: ["Use range.", "Square each number.", "Add them up."],
  verified: true,
  verification_note: "reference solution passes",
  language: "python",
};
const easier: Exercise = { ...first, exercise_id: "e2", title: "Square one number", difficulty: "easier", starter_code: "def square(x):\n    pass\n" };

describe("ExercisePage", () => {
  beforeEach(() => {
    installEventSource();
    setToken("t");
  });

  it("runs code, shows results per test and the sandbox status in words, and brings in an easier exercise", async () => {
    let assessment: Assessment = { quiz: { quiz_id: "q", title: "Q", questions: [] }, exercises: [first], exercise_note: "" };
    const fetchMock = mockFetch((url) => {
      if (url === "/v1/courses/c1/lessons/1/assessment") return json(assessment);
      if (url === "/v1/exercises/e1/submissions") {
        return json(
          {
            status: "completed",
            reason: "",
            passed: 1,
            total: 3,
            all_passed: false,
            output: "",
            tests: [
              { name: "test_small", suite: "visible", status: "passed", message: "", duration_ms: 1 },
              { name: "test_big", suite: "hidden", status: "failed", message: "A hidden check did not hold.", duration_ms: 1 },
              { name: "test_zero", suite: "hidden", status: "error", message: "TypeError", duration_ms: 1 },
            ],
          },
          201,
        );
      }
      if (url === "/v1/courses/c1/lessons/1/exercises") return json({ job_id: "jx", events_url: "/v1/jobs/jx/events" }, 202);
      return undefined;
    });
    render(
      <MemoryRouter initialEntries={["/courses/c1/lessons/1/exercise"]}>
        <Routes>
          <Route path="/courses/:id/lessons/:n/exercise" element={<ExercisePage />} />
        </Routes>
      </MemoryRouter>,
    );
    const exercise = await screen.findByTestId("exercise");
    expect(exercise.querySelector("script")).toBeNull();
    expect(screen.getByTestId("code")).toHaveValue(first.starter_code);
    expect(screen.getByTestId("visible-tests").querySelector("code.language-python")).not.toBeNull();

    // hints one by one
    expect(screen.queryByTestId("hint-1")).toBeNull();
    await userEvent.click(screen.getByTestId("show-hint"));
    expect(screen.getByTestId("hint-1")).toHaveTextContent("Use range.");
    expect(screen.queryByTestId("hint-2")).toBeNull();
    await userEvent.click(screen.getByTestId("show-hint"));
    expect(screen.getByTestId("hint-2")).toBeInTheDocument();

    const code = screen.getByTestId("code");
    await userEvent.clear(code);
    await userEvent.type(code, "def sum_squares(n):{Enter}return 0");
    await userEvent.click(screen.getByTestId("submit-code"));
    const results = await screen.findByTestId("test-results");
    expect(bodyOf(fetchMock, fetchMock.mock.calls.findIndex(([u]) => u === "/v1/exercises/e1/submissions"))).toEqual({
      code: "def sum_squares(n):\nreturn 0",
    });
    expect(results).toHaveTextContent("1 / 3 tests passed");
    expect(within(results).getByTestId("sandbox-status")).toHaveTextContent("Your code ran to the end. 1 of 3 tests passed.");
    expect(within(results).getAllByTestId("test-row")).toHaveLength(3);
    expect(results).toHaveTextContent("A hidden check did not hold.");

    // an easier one: start the job, wait for exercise.ready, show it
    await userEvent.click(screen.getByTestId("easier-exercise"));
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(1));
    expect(bodyOf(fetchMock, fetchMock.mock.calls.findIndex(([u]) => u === "/v1/courses/c1/lessons/1/exercises"))).toEqual({ difficulty: "easier" });
    expect(screen.getByTestId("exercise-job")).toHaveTextContent("Writing and checking");
    assessment = { ...assessment, exercises: [first, easier] };
    act(() =>
      MockEventSource.latest().emit("exercise.ready", 1, {
        course_id: "c1",
        lesson_id: "l1",
        order: 1,
        exercise: { exercise_id: "e2", title: "Square one number", difficulty: "easier", verified: true, verification_note: "" },
      }),
    );
    expect(MockEventSource.latest().closed).toBe(true);
    expect(await screen.findByRole("heading", { name: "Square one number" })).toBeInTheDocument();
    expect(screen.getByTestId("code")).toHaveValue(easier.starter_code);
  });

  it("puts sandbox outcomes in words", () => {
    const base = { reason: "", passed: 0, total: 2, all_passed: false, output: "", tests: [] };
    expect(describeRun({ ...base, status: "timeout" })).toMatch(/took too long/);
    expect(describeRun({ ...base, status: "memory_limit" })).toMatch(/too much memory/);
    expect(describeRun({ ...base, status: "blocked" })).toMatch(/does not allow/);
    expect(describeRun({ ...base, status: "syntax_error" })).toMatch(/syntax error/);
    expect(describeRun({ ...base, status: "completed", passed: 2, all_passed: true })).toBe("All 2 tests passed. Well done!");
  });

  it("fences code so backticks inside cannot end the block", () => {
    expect(codeFence("x = '```'\n", "python")).toBe("````python\nx = '```'\n````");
  });
});
