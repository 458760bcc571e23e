import { useNavigate } from "react-router-dom";
import { rememberJob } from "../lib/pendingJob";
import { useTitle } from "../lib/useTitle";
import { CourseForm } from "./CourseForm";

export function NewCoursePage() {
  useTitle("New course");
  const navigate = useNavigate();
  return (
    <section className="narrow">
      <h1>New course</h1>
      <p className="lead">
        Describe what you want to learn. Lectern drafts a plan you can change in a chat before
        the lessons are written.
      </p>
      <CourseForm
        onCreated={(created) => {
          const job = { job_id: created.job_id, events_url: created.events_url, kind: "plan_course" };
          rememberJob(created.course_id, job);
          navigate(`/courses/${encodeURIComponent(created.course_id)}`, { state: { job } });
        }}
      />
    </section>
  );
}
