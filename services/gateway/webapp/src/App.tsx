import { lazy, Suspense, type ReactNode } from "react";
import { Navigate, Outlet, Route, Routes, useLocation } from "react-router-dom";
import { useAuth } from "./auth/AuthContext";
import { Layout } from "./components/Layout";
import { Loading } from "./components/Loading";
import { CourseListPage } from "./pages/CourseListPage";
import { CoursePage } from "./pages/CoursePage";
import { ExercisePage } from "./pages/ExercisePage";
import { LessonPage } from "./pages/LessonPage";
import { LoginPage } from "./pages/LoginPage";
import { NewCoursePage } from "./pages/NewCoursePage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { QuizPage } from "./pages/QuizPage";
import { StartPage } from "./pages/StartPage";

// prompt administration is for a few admins: its code loads only when opened
const PromptsPage = lazy(() =>
  import("./pages/admin/PromptsPage").then((m) => ({ default: m.PromptsPage })),
);
const PromptPage = lazy(() =>
  import("./pages/admin/PromptPage").then((m) => ({ default: m.PromptPage })),
);

/** App routes need a token: without one, go to the start page. */
function RequireAuth() {
  const { token, leftOnPurpose } = useAuth();
  const location = useLocation();
  // after an expired session, come back here once signed in again; not after a log out
  const state = leftOnPurpose ? undefined : { from: location.pathname };
  if (!token) return <Navigate to="/" replace state={state} />;
  return <Outlet />;
}

function RequireAdmin({ children }: { children: ReactNode }) {
  const { me, loadingMe, isAdmin } = useAuth();
  if (loadingMe && !me) return <Loading />;
  if (!isAdmin) {
    return (
      <section className="panel" data-testid="forbidden">
        <h1>Prompt administration</h1>
        <p>This page is for administrators. Your account does not have the admin role.</p>
      </section>
    );
  }
  return <Suspense fallback={<Loading />}>{children}</Suspense>;
}

export function App() {
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route path="/" element={<StartPage />} />
        <Route path="/login" element={<LoginPage />} />
        <Route element={<RequireAuth />}>
          <Route path="/courses" element={<CourseListPage />} />
          <Route path="/courses/new" element={<NewCoursePage />} />
          <Route path="/courses/:id" element={<CoursePage />} />
          <Route path="/courses/:id/lessons/:n" element={<LessonPage />} />
          <Route path="/courses/:id/lessons/:n/quiz" element={<QuizPage />} />
          <Route path="/courses/:id/lessons/:n/exercise" element={<ExercisePage />} />
          <Route
            path="/admin/prompts"
            element={
              <RequireAdmin>
                <PromptsPage />
              </RequireAdmin>
            }
          />
          <Route
            path="/admin/prompts/:name"
            element={
              <RequireAdmin>
                <PromptPage />
              </RequireAdmin>
            }
          />
          <Route path="*" element={<NotFoundPage />} />
        </Route>
      </Route>
    </Routes>
  );
}
