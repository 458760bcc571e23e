import { Navigate, useLocation } from "react-router-dom";
import { auth } from "../api/endpoints";
import { useAuth } from "../auth/AuthContext";
import { ErrorBox } from "../components/ErrorBox";
import { useAction } from "../lib/useAction";
import { useTitle } from "../lib/useTitle";
import { AuthForms, useAfterSignIn } from "./AuthForms";

export function StartPage() {
  useTitle(null);
  const { token, signIn, notice } = useAuth();
  const { busy, error, run } = useAction();
  const done = useAfterSignIn();
  const from = (useLocation().state as { from?: string } | null)?.from;

  if (token) return <Navigate to={from && from !== "/" ? from : "/courses"} replace />;

  async function guest() {
    await run(async () => {
      await signIn(await auth.guest());
      done();
    });
  }

  return (
    <div className="start">
      <section className="hero">
        <h1>Learn anything, with a course written for you</h1>
        <p className="lead">
          Tell Lectern what you want to learn. Shape the plan in a chat, then watch the lessons,
          quizzes and coding exercises being written.
        </p>
        {notice && (
          <p className="notice" role="status">
            {notice}
          </p>
        )}
        <button
          type="button"
          className="button primary large"
          onClick={guest}
          disabled={busy}
          data-testid="guest"
        >
          {busy ? "Starting…" : "Continue as guest"}
        </button>
        <p className="muted small">No account needed. Register to come back to your courses.</p>
        <ErrorBox error={error} onRetry={guest} />
      </section>
      <AuthForms />
    </div>
  );
}
