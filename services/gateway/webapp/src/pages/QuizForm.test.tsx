import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { Quiz } from "../api/types";
import { bodyOf, json, mockFetch } from "../test/helpers";
import { buildAnswers, QuizForm } from "./QuizPage";

const quiz: Quiz = {
  quiz_id: "quiz-1",
  title: "Coroutines quiz",
  questions: [
    { question_id: "q1", kind: "choice", question: "What does await do?", options: ["Blocks the thread", "Yields to the event loop", "Starts a thread"] },
    { question_id: "q2", kind: "choice", question: "Which runs the loop?", options: ["asyncio.run", "asyncio.sleep"] },
    { question_id: "q3", kind: "open", question: "Explain a task in one sentence." },
  ],
};

describe("quiz", () => {
  it("builds answers: choice indexes, trimmed text, unanswered left out", () => {
    expect(buildAnswers(quiz, { q1: 0, q3: "  a scheduled coroutine " })).toEqual([
      { question_id: "q1", choice: 0 },
      { question_id: "q3", text: "a scheduled coroutine" },
    ]);
    expect(buildAnswers(quiz, { q3: "   " })).toEqual([]);
  });

  it("sends the answers and shows the score, the right option and its explanation", async () => {
    const fetchMock = mockFetch((url) =>
      url === "/v1/quizzes/quiz-1/attempts"
        ? json(
            {
              score: 1.5,
              max_score: 3,
              percent: 50,
              results: [
                { question_id: "q1", kind: "choice", score: 0, max_score: 1, correct: false, choice: 0, correct_choice: 1, feedback: "It does not block.", explanation: "await suspends the coroutine and lets the loop run others." },
                { question_id: "q2", kind: "choice", score: 1, max_score: 1, correct: true, choice: 0, correct_choice: 0, feedback: "asyncio.run starts the loop.", explanation: "asyncio.run starts the loop." },
                { question_id: "q3", kind: "open", score: 0.5, max_score: 1, feedback: "Mention scheduling.", model_answer: "A task wraps a coroutine scheduled on the loop." },
              ],
            },
            201,
          )
        : undefined,
    );
    render(<QuizForm quiz={quiz} />);
    expect(screen.getByTestId("quiz")).toBeInTheDocument();

    await userEvent.click(screen.getByLabelText("Blocks the thread"));
    await userEvent.click(screen.getByLabelText("asyncio.run"));
    await userEvent.type(screen.getByTestId("answer-q3"), "A coroutine on the loop");
    await userEvent.click(screen.getByTestId("submit-quiz"));

    expect(bodyOf(fetchMock, 0)).toEqual({
      answers: [
        { question_id: "q1", choice: 0 },
        { question_id: "q2", choice: 0 },
        { question_id: "q3", text: "A coroutine on the loop" },
      ],
    });
    const result = await screen.findByTestId("quiz-result");
    expect(result).toHaveTextContent("1.5 / 3");
    expect(result).toHaveTextContent("50%");

    const q1 = screen.getByTestId("result-q1");
    expect(within(q1).getByTestId("correct-option")).toHaveTextContent("Yields to the event loop");
    expect(q1).toHaveTextContent("It does not block.");
    expect(q1).toHaveTextContent("await suspends the coroutine and lets the loop run others.");
    expect(screen.getByTestId("result-q2")).toHaveTextContent("Correct");
    expect(screen.getByTestId("result-q3")).toHaveTextContent("Mention scheduling.");
    expect(screen.getByTestId("result-q3")).toHaveTextContent("A task wraps a coroutine scheduled on the loop.");
  });

  it("asks for at least one answer, and shows a 422 naming the field", async () => {
    const fetchMock = mockFetch(() => json({ detail: "answers[0].choice: q1 has options 0 to 2" }, 422));
    render(<QuizForm quiz={quiz} />);
    await userEvent.click(screen.getByTestId("submit-quiz"));
    expect(screen.getByRole("alert")).toHaveTextContent("Answer at least one question");
    expect(fetchMock).not.toHaveBeenCalled();

    await userEvent.click(screen.getByLabelText("Starts a thread"));
    await userEvent.click(screen.getByTestId("submit-quiz"));
    expect(await screen.findByRole("alert")).toHaveTextContent("answers[0].choice: q1 has options 0 to 2");
  });
});
