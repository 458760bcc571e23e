import { Link, useParams } from "react-router-dom";
import { lessons } from "../api/endpoints";
import type { Assessment } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { Loading } from "../components/Loading";
import { useApi, type ApiState } from "../lib/useApi";

// What the quiz and the exercise pages share: the lesson they belong to and its assessment.

/** The course and lesson number from the route, the lesson's address and its assessment. */
export function useLessonAssessment() {
  const { id = "", n: nParam = "1" } = useParams();
  const n = Number(nParam);
  const assessment = useApi((signal) => lessons.assessment(id, n, signal), [id, n]);
  return { id, n, base: `/courses/${encodeURIComponent(id)}/lessons/${n}`, assessment };
}

/** The way back to the course and the lesson, then the assessment's error or "loading". */
export function AssessmentHead({
  courseId,
  n,
  assessment,
  loadingLabel,
}: {
  courseId: string;
  n: number;
  assessment: ApiState<Assessment>;
  loadingLabel: string;
}) {
  return (
    <>
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to={`/courses/${encodeURIComponent(courseId)}`}>Course</Link> <span aria-hidden="true">›</span>{" "}
        <Link to={`/courses/${encodeURIComponent(courseId)}/lessons/${n}`}>Lesson {n}</Link>
      </nav>
      <ErrorBox error={assessment.error} onRetry={assessment.reload} />
      {assessment.loading && !assessment.data && <Loading label={loadingLabel} />}
    </>
  );
}
