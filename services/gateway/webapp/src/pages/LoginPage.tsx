import { Link, Navigate } from "react-router-dom";
import { useAuth } from "../auth/AuthContext";
import { useTitle } from "../lib/useTitle";
import { AuthForms } from "./AuthForms";

export function LoginPage() {
  useTitle("Log in");
  const { token, notice } = useAuth();
  if (token) return <Navigate to="/courses" replace />;
  return (
    <div className="narrow">
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <AuthForms initial="login" />
      <p className="muted center">
        Just looking? <Link to="/">Continue as a guest</Link>.
      </p>
    </div>
  );
}
