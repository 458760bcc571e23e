import { useState, type FormEvent } from "react";
import { useLocation, useNavigate } from "react-router-dom";
import { invalidFields, type FieldError } from "../api/client";
import { auth } from "../api/endpoints";
import { useAuth } from "../auth/AuthContext";
import { ErrorBox } from "../components/ErrorBox";
import { useAction } from "../lib/useAction";

type Mode = "login" | "register";

const MODES: [Mode, string][] = [
  ["login", "Log in"],
  ["register", "Register"],
];

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
  const { busy, error, setError, run } = useAction();
  const { signIn } = useAuth();
  const done = useAfterSignIn();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const problems: FieldError[] = [];
    if (!email.trim()) problems.push({ field: "email", message: "enter your email address" });
    if (!password) problems.push({ field: "password", message: "enter your password" });
    else if (mode === "register" && password.length < 8) {
      problems.push({ field: "password", message: "use at least 8 characters" });
    }
    if (problems.length) {
      setError(invalidFields(problems));
      return;
    }
    await run(async () => {
      const out =
        mode === "login"
          ? await auth.login(email.trim(), password)
          : await auth.register(email.trim(), password);
      await signIn(out);
      done();
    });
  }

  const title = mode === "login" ? "Log in" : "Create an account";
  return (
    <section className="panel auth-panel" aria-labelledby="auth-title">
      <div className="tabs" role="group" aria-label="Account">
        {MODES.map(([m, label]) => (
          <button
            key={m}
            type="button"
            className={mode === m ? "tab active" : "tab"}
            aria-pressed={mode === m}
            onClick={() => {
              setMode(m);
              setError(null);
            }}
            data-testid={`show-${m}`}
          >
            {label}
          </button>
        ))}
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
