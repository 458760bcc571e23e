import { useState, type FormEvent } from "react";
import { useLocation, useNavigate } from "react-router-dom";
import { ApiError, toApiError } from "../api/client";
import { auth } from "../api/endpoints";
import { useAuth } from "../auth/AuthContext";
import { ErrorBox } from "../components/ErrorBox";

type Mode = "login" | "register";

export function useAfterSignIn() {
  const navigate = useNavigate();
  const location = useLocation();
  const from = (location.state as { from?: string } | null)?.from;
  return () => navigate(from && from !== "/" && from !== "/login" ? from : "/courses", { replace: true });
}

/** Log in / register with email and password. */
export function AuthForms({ initial = "login" }: { initial?: Mode }) {
  const [mode, setMode] = useState<Mode>(initial);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const { signIn } = useAuth();
  const done = useAfterSignIn();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const problems = [];
    if (!email.trim()) problems.push({ field: "email", message: "enter your email address" });
    if (!password) problems.push({ field: "password", message: "enter your password" });
    else if (mode === "register" && password.length < 8) {
      problems.push({ field: "password", message: "use at least 8 characters" });
    }
    if (problems.length) {
      setError(new ApiError(422, problems.map((p) => `${p.field}: ${p.message}`).join("\n"), problems));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const out =
        mode === "login"
          ? await auth.login(email.trim(), password)
          : await auth.register(email.trim(), password);
      await signIn(out);
      done();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  }

  const title = mode === "login" ? "Log in" : "Create an account";
  return (
    <section className="panel auth-panel" aria-labelledby="auth-title">
      <div className="tabs" role="group" aria-label="Account">
        <button
          type="button"
          className={mode === "login" ? "tab active" : "tab"}
          aria-pressed={mode === "login"}
          onClick={() => {
            setMode("login");
            setError(null);
          }}
          data-testid="show-login"
        >
          Log in
        </button>
        <button
          type="button"
          className={mode === "register" ? "tab active" : "tab"}
          aria-pressed={mode === "register"}
          onClick={() => {
            setMode("register");
            setError(null);
          }}
          data-testid="show-register"
        >
          Register
        </button>
      </div>
      <h2 id="auth-title">{title}</h2>
      <form onSubmit={submit} noValidate data-testid={`${mode}-form`} className="form">
        <label className="field">
          <span>Email</span>
          <input
            type="email"
            name="email"
            autoComplete="email"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            data-testid="email"
            required
          />
        </label>
        <label className="field">
          <span>Password</span>
          <input
            type="password"
            name="password"
            autoComplete={mode === "login" ? "current-password" : "new-password"}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            data-testid="password"
            aria-describedby={mode === "register" ? "password-hint" : undefined}
            required
          />
          {mode === "register" && (
            <small id="password-hint" className="hint">
              At least 8 characters.
            </small>
          )}
        </label>
        <ErrorBox error={error} />
        <button type="submit" className="button primary" disabled={busy} data-testid={mode}>
          {busy ? "Please wait…" : title}
        </button>
      </form>
    </section>
  );
}
