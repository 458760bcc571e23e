import { Link } from "react-router-dom";
import { courses } from "../api/endpoints";
import type { Recommendation } from "../api/types";
import { useApi } from "../lib/useApi";
import { DataTable } from "./DataTable";
import { ErrorBox } from "./ErrorBox";
import { Loading } from "./Loading";

function nextStep(courseId: string, rec: Recommendation): { text: string; to: string | null } {
  const base = `/courses/${encodeURIComponent(courseId)}/lessons/${rec.lesson.order}`;
  const lesson = `lesson ${rec.lesson.order}, “${rec.lesson.title}”`;
  const exercise = rec.exercise_id ? `${base}/exercise?exercise=${encodeURIComponent(rec.exercise_id)}` : `${base}/exercise`;
  switch (rec.action) {
    case "take_quiz":
      return { text: `Take the quiz of ${lesson}`, to: `${base}/quiz` };
    case "revise_lesson":
      return { text: `Go over ${lesson} again`, to: base };
    case "try_exercise":
      return { text: `Try the coding exercise of ${lesson}`, to: exercise };
    case "easier_exercise":
      return { text: `Try an easier exercise for ${lesson}`, to: `${base}/exercise` };
    case "harder_exercise":
      return { text: `Take on a harder exercise for ${lesson}`, to: `${base}/exercise` };
    case "move_on":
      return { text: `Move on to ${lesson}`, to: base };
    case "course_complete":
      return { text: "You have completed this course. Well done!", to: null };
    default:
      return { text: `Continue with ${lesson}`, to: base };
  }
}

/** What to do next in a ready course, and why. */
export function RecommendationBox({ courseId }: { courseId: string }) {
  const { data, error, loading, reload } = useApi(
    (signal) => courses.recommendation(courseId, signal),
    [courseId],
  );
  return (
    <section className="panel recommendation" data-testid="recommendation" aria-labelledby="rec-title">
      <h2 id="rec-title">Your next step</h2>
      {loading && !data && <Loading label="Working out your next step…" />}
      <ErrorBox error={error} onRetry={reload} />
      {data &&
        (() => {
          const step = nextStep(courseId, data);
          return (
            <>
              <p className="rec-action" data-testid="recommendation-action" data-action={data.action}>
                {step.to ? <Link to={step.to}>{step.text}</Link> : step.text}
              </p>
              {data.reason && <p className="muted">{data.reason}</p>}
              {data.evidence?.length > 0 && (
                <details className="evidence">
                  <summary>How you are doing</summary>
                  <DataTable columns={["Lesson", "Quiz", "Exercises passed"]} className="table compact" wrap={false}>
                    {data.evidence.map((e) => (
                      <tr key={e.order}>
                        <td>{e.order}</td>
                        <td>{e.quiz_percent === null ? "not taken" : `${e.quiz_percent}%`}</td>
                        <td>
                          {e.exercises_passed} / {e.exercises}
                        </td>
                      </tr>
                    ))}
                  </DataTable>
                </details>
              )}
            </>
          );
        })()}
    </section>
  );
}
