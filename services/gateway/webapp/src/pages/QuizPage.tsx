import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { toApiError } from "../api/client";
import { quizzes } from "../api/endpoints";
import type { AttemptResult, Quiz, QuizAnswer, QuestionResult } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { useAction } from "../lib/useAction";
import { useTitle } from "../lib/useTitle";
import { AssessmentHead, useLessonAssessment } from "./LessonAssessment";

export function QuizPage() {
  const { id, n, base, assessment } = useLessonAssessment();
  useTitle(assessment.data?.quiz.title ?? `Quiz ${n}`);
  return (
    <section className="quiz-page">
      <AssessmentHead courseId={id} n={n} assessment={assessment} loadingLabel="Loading the quiz…" />
      {assessment.data && <QuizForm quiz={assessment.data.quiz} lessonLink={base} />}
    </section>
  );
}

type Answers = Record<string, number | string>;

/** The answers payload: a choice index or the text for each answered question. */
export function buildAnswers(quiz: Quiz, answers: Answers): QuizAnswer[] {
  const out: QuizAnswer[] = [];
  for (const q of quiz.questions) {
    const value = answers[q.question_id];
    if (q.kind === "choice") {
      if (typeof value === "number") out.push({ question_id: q.question_id, choice: value });
    } else if (typeof value === "string" && value.trim()) {
      out.push({ question_id: q.question_id, text: value.trim() });
    }
  }
  return out;
}

export function QuizForm({ quiz, lessonLink }: { quiz: Quiz; lessonLink?: string }) {
  const [answers, setAnswers] = useState<Answers>({});
  const [result, setResult] = useState<AttemptResult | null>(null);
  const { busy, error, setError, run } = useAction();
  const resultRef = useRef<HTMLElement>(null);

  useEffect(() => {
    if (result) resultRef.current?.focus();
  }, [result]);

  const set = (qid: string, value: number | string) => setAnswers((a) => ({ ...a, [qid]: value }));

  async function submit(event?: FormEvent) {
    event?.preventDefault();
    const payload = buildAnswers(quiz, answers);
    if (payload.length === 0) {
      setError(toApiError(new Error("Answer at least one question before you submit.")));
      return;
    }
    await run(async () => setResult(await quizzes.attempt(quiz.quiz_id, payload)));
  }

  const unanswered = quiz.questions.length - buildAnswers(quiz, answers).length;
  const byId = new Map(result?.results.map((r) => [r.question_id, r]));

  return (
    <div data-testid="quiz">
      <h1>{quiz.title}</h1>
      {result && (
        <section className="panel quiz-result" data-testid="quiz-result" aria-live="polite" tabIndex={-1} ref={resultRef}>
          <h2>
            Your score: <span data-testid="quiz-score">{formatScore(result.score)} / {formatScore(result.max_score)}</span>{" "}
            <span className="muted">({result.percent}%)</span>
          </h2>
          <p>{verdict(result.percent)}</p>
          <div className="actions">
            <button
              type="button"
              className="button secondary"
              onClick={() => {
                setResult(null);
                setAnswers({});
              }}
              data-testid="retake-quiz"
            >
              Take it again
            </button>
            {lessonLink && (
              <Link to={lessonLink} className="button ghost">
                Back to the lesson
              </Link>
            )}
          </div>
        </section>
      )}
      <form className="form" onSubmit={submit} noValidate>
        <ol className="questions">
          {quiz.questions.map((q, qi) => {
            const graded = byId.get(q.question_id);
            const name = `q-${q.question_id}`;
            return (
              <li key={q.question_id} className="question panel" data-testid={`question-${q.question_id}`}>
                <fieldset disabled={Boolean(result)}>
                  <legend>
                    <span className="question-number">Question {qi + 1}</span> {q.question}
                  </legend>
                  {q.kind === "choice" ? (
                    <div className="options" role="radiogroup" aria-label={`Question ${qi + 1}`}>
                      {(q.options ?? []).map((option, oi) => {
                        const mark =
                          graded && graded.correct_choice === oi
                            ? "right"
                            : graded && graded.choice === oi
                              ? "wrong"
                              : "";
                        return (
                          <label key={oi} className={`option ${mark}`}>
                            <input
                              type="radio"
                              name={name}
                              value={oi}
                              checked={answers[q.question_id] === oi}
                              onChange={() => set(q.question_id, oi)}
                              data-testid={`option-${q.question_id}-${oi}`}
                            />
                            <span>{option}</span>
                            {mark === "right" && <span className="tag right">right answer</span>}
                            {mark === "wrong" && <span className="tag wrong">your answer</span>}
                          </label>
                        );
                      })}
                    </div>
                  ) : (
                    <label className="field">
                      <span className="sr-only">Your answer</span>
                      <textarea
                        name={name}
                        rows={4}
                        maxLength={4000}
                        value={(answers[q.question_id] as string | undefined) ?? ""}
                        onChange={(e) => set(q.question_id, e.target.value)}
                        placeholder="Your answer, in your own words"
                        data-testid={`answer-${q.question_id}`}
                      />
                    </label>
                  )}
                </fieldset>
                {graded && <QuestionFeedback question={q} result={graded} />}
              </li>
            );
          })}
        </ol>
        {!result && (
          <>
            {unanswered > 0 && (
              <p className="small muted">
                {unanswered} of {quiz.questions.length} questions unanswered: they score 0.
              </p>
            )}
            <ErrorBox error={error} onRetry={() => void submit()} />
            <button type="submit" className="button primary" disabled={busy} data-testid="submit-quiz">
              {busy ? "Grading…" : "Submit answers"}
            </button>
            {busy && <p className="small muted">Open answers are graded by the model; this can take a little while.</p>}
          </>
        )}
      </form>
    </div>
  );
}

function formatScore(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function verdict(percent: number): string {
  if (percent >= 90) return "Excellent: you have this lesson down.";
  if (percent >= 70) return "Good work. Look over the feedback for what you missed.";
  if (percent >= 40) return "A fair start. Re-read the parts the feedback points to, then try again.";
  return "This one needs another look. Go over the lesson again, then retake the quiz.";
}

function QuestionFeedback({ question, result }: { question: Quiz["questions"][number]; result: QuestionResult }) {
  const full = result.score >= result.max_score;
  const none = result.score <= 0;
  return (
    <div className={`feedback ${full ? "right" : none ? "wrong" : "partial"}`} data-testid={`result-${result.question_id}`}>
      <p className="feedback-score">
        <strong>{full ? "Correct" : none ? (result.kind === "choice" ? "Not quite" : "Not yet") : "Partly right"}</strong>{" "}
        <span className="muted">
          ({formatScore(result.score)} / {formatScore(result.max_score)})
        </span>
      </p>
      {result.kind === "choice" && typeof result.correct_choice === "number" && (
        <p>
          Right answer: <strong data-testid="correct-option">{question.options?.[result.correct_choice] ?? `option ${result.correct_choice + 1}`}</strong>
        </p>
      )}
      {result.feedback && result.feedback !== result.explanation && <p>{result.feedback}</p>}
      {result.explanation && <p className="explanation">{result.explanation}</p>}
      {result.model_answer && (
        <details>
          <summary>A model answer</summary>
          <p>{result.model_answer}</p>
        </details>
      )}
    </div>
  );
}
