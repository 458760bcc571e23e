import { Link } from "react-router-dom";
import { courses } from "../api/endpoints";
import { ErrorBox } from "../components/ErrorBox";
import { Loading } from "../components/Loading";
import { StatusBadge } from "../components/StatusBadge";
import { formatDate } from "../lib/format";
import { useApi } from "../lib/useApi";
import { useTitle } from "../lib/useTitle";

export function CourseListPage() {
  useTitle("Your courses");
  const { data, error, loading, reload } = useApi((signal) => courses.list(signal), []);
  return (
    <section>
      <div className="page-head">
        <h1>Your courses</h1>
        <Link to="/courses/new" className="button primary" data-testid="new-course">
          New course
        </Link>
      </div>
      <ErrorBox error={error} onRetry={reload} />
      {loading && !data && <Loading label="Loading your courses…" />}
      {data && data.length === 0 && (
        <div className="empty panel">
          <p>You have no courses yet.</p>
          <p>
            <Link to="/courses/new">Plan your first course</Link>: say what you want to learn and
            how much time you have.
          </p>
        </div>
      )}
      {data && (
        <ul className="course-list" data-testid="course-list">
          {data.map((course) => (
            <li key={course.course_id} className="course-item" data-testid="course-item">
              <Link to={`/courses/${encodeURIComponent(course.course_id)}`} className="course-link">
                <span className="course-title">{course.title || course.topic}</span>
                {course.title && course.title !== course.topic && (
                  <span className="muted small">{course.topic}</span>
                )}
              </Link>
              <div className="course-meta">
                <StatusBadge status={course.status} />
                {course.lessons_total > 0 && (
                  <span className="small muted">
                    {course.lessons_done} / {course.lessons_total} lessons
                  </span>
                )}
                <span className="small muted">{formatDate(course.created_at)}</span>
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
