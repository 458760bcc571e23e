import { Link, NavLink, Outlet, useNavigate } from "react-router-dom";
import { useAuth } from "../auth/AuthContext";

export function Layout() {
  const { token, me, isAdmin, signOut } = useAuth();
  const navigate = useNavigate();
  const who = me ? (me.email ?? (me.is_guest ? "Guest" : "Signed in")) : null;
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="topbar-inner">
          <Link to={token ? "/courses" : "/"} className="brand" aria-label="Lectern home">
            <span className="brand-mark" aria-hidden="true">
              L
            </span>
            Lectern
          </Link>
          {token && (
            <nav aria-label="Main" className="nav">
              <NavLink to="/courses" end>
                Courses
              </NavLink>
              <NavLink to="/courses/new">New course</NavLink>
              {isAdmin && (
                <NavLink to="/admin/prompts" data-testid="admin-link">
                  Prompt admin
                </NavLink>
              )}
            </nav>
          )}
          {token && (
            <div className="account">
              {who && (
                <span className="who" data-testid="who">
                  {who}
                </span>
              )}
              <button
                type="button"
                className="button ghost small"
                data-testid="logout"
                onClick={() => {
                  signOut();
                  navigate("/", { replace: true });
                }}
              >
                Log out
              </button>
            </div>
          )}
        </div>
      </header>
      <main id="main" className="main" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  );
}
