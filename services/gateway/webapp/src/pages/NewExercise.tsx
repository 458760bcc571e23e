import { lessons } from "../api/endpoints";
import { ErrorBox } from "../components/ErrorBox";
import { StreamNotice } from "../components/StreamNotice";
import { useAction } from "../lib/useAction";
import { useJob } from "../stream/useJob";

// Asking for another exercise for a lesson (easier or harder), and following its job.

export function NewExercise({ courseId, n, onReady }: { courseId: string; n: number; onReady: (exerciseId: string) => void }) {
  const { busy, error, run } = useAction();
  const { stream, status, reconnect, running, failed, start } = useJob((ev) => {
    if (ev.event === "exercise.ready") {
      const payload = ev.data.payload as { exercise?: { exercise_id?: string } };
      if (payload.exercise?.exercise_id) onReady(payload.exercise.exercise_id);
    }
  });

  async function ask(difficulty: "easier" | "harder") {
    await run(async () => {
      start(await lessons.newExercise(courseId, n, difficulty), "generate_exercise");
    });
  }

  return (
    <section className="panel new-exercise" aria-labelledby="new-exercise-title">
      <h2 id="new-exercise-title">Another exercise</h2>
      <p className="small muted">Too hard, or too easy? Get a new exercise for this lesson.</p>
      <div className="actions">
        <button type="button" className="button secondary" onClick={() => void ask("easier")} disabled={busy || running} data-testid="easier-exercise">
          Try an easier one
        </button>
        <button type="button" className="button secondary" onClick={() => void ask("harder")} disabled={busy || running} data-testid="harder-exercise">
          Try a harder one
        </button>
      </div>
      <ErrorBox error={error} />
      <StreamNotice status={status} onReconnect={reconnect} />
      {running && (
        <p className="live" role="status" data-testid="exercise-job">
          <span className="pulse" aria-hidden="true" /> Writing and checking a new exercise… this can take a minute.
        </p>
      )}
      {stream.exercise && !running && (
        <p className="success" role="status" data-testid="exercise-job">
          New exercise ready: {stream.exercise.exercise.title}.
        </p>
      )}
      {failed && (
        <div className="error-box" role="alert" data-testid="job-failed">
          <p>No new exercise this time: {failed.reason}</p>
          {failed.retryable && (
            <p>
              <button type="button" className="button secondary small" onClick={() => void ask("easier")}>
                Try again (easier)
              </button>{" "}
              <button type="button" className="button secondary small" onClick={() => void ask("harder")}>
                Try again (harder)
              </button>
            </p>
          )}
        </div>
      )}
    </section>
  );
}
