import { api, apiRaw } from "./client";
import type {
  Accepted,
  AnalyticsRow,
  Assessment,
  AttemptResult,
  Course,
  CourseSummary,
  CreateCourseBody,
  ExperimentReport,
  Lesson,
  Me,
  PromptDiff,
  PromptMessage,
  PromptSummary,
  PromptTemplate,
  QuizAnswer,
  Recommendation,
  Source,
  SourceAccepted,
  SubmissionResult,
  TokenOut,
} from "./types";

const enc = encodeURIComponent;

export const auth = {
  guest: () => api<TokenOut>("/v1/auth/guest", { method: "POST" }),
  register: (email: string, password: string) =>
    api<TokenOut>("/v1/auth/register", { body: { email, password } }),
  login: (email: string, password: string) =>
    api<TokenOut>("/v1/auth/login", { body: { email, password } }),
  me: (signal?: AbortSignal) => api<Me>("/v1/auth/me", { signal }),
};

export const courses = {
  list: (signal?: AbortSignal) => api<CourseSummary[]>("/v1/courses", { signal }),
  create: (body: CreateCourseBody) =>
    api<Accepted & { course_id: string }>("/v1/courses", { body }),
  get: (id: string, signal?: AbortSignal) => api<Course>(`/v1/courses/${enc(id)}`, { signal }),
  message: (id: string, text: string) =>
    api<Accepted>(`/v1/courses/${enc(id)}/messages`, { body: { text } }),
  finalize: (id: string) => api<Accepted>(`/v1/courses/${enc(id)}/finalize`, { method: "POST" }),
  recommendation: (id: string, signal?: AbortSignal) =>
    api<Recommendation>(`/v1/courses/${enc(id)}/recommendation`, { signal }),
  exportFile: (id: string, format: "markdown" | "html") =>
    apiRaw(`/v1/courses/${enc(id)}/export?format=${format}`, {
      headers: { Accept: format === "html" ? "text/html" : "text/markdown" },
    }),
};

export const sources = {
  list: (id: string, signal?: AbortSignal) =>
    api<{ course_id: string; sources: Source[] }>(`/v1/courses/${enc(id)}/sources`, { signal }),
  upload: (id: string, file: File) => {
    const form = new FormData();
    form.append("file", file);
    return api<SourceAccepted>(`/v1/courses/${enc(id)}/sources`, { method: "POST", body: form });
  },
  remove: (id: string, sourceId: string) =>
    api<null>(`/v1/courses/${enc(id)}/sources/${enc(sourceId)}`, { method: "DELETE" }),
};

export const lessons = {
  get: (id: string, n: number, version?: number, signal?: AbortSignal) =>
    api<Lesson>(
      `/v1/courses/${enc(id)}/lessons/${n}${version ? `?version=${version}` : ""}`,
      { signal },
    ),
  revise: (id: string, n: number, feedback: string) =>
    api<Accepted>(`/v1/courses/${enc(id)}/lessons/${n}/revise`, { body: { feedback } }),
  feedback: (lessonId: string, rating: number, comment: string) =>
    api<unknown>("/v1/feedback", { body: { lesson_id: lessonId, rating, comment } }),
  assessment: (id: string, n: number, signal?: AbortSignal) =>
    api<Assessment>(`/v1/courses/${enc(id)}/lessons/${n}/assessment`, { signal }),
  newExercise: (id: string, n: number, difficulty: "easier" | "harder") =>
    api<Accepted>(`/v1/courses/${enc(id)}/lessons/${n}/exercises`, { body: { difficulty } }),
};

export const quizzes = {
  attempt: (quizId: string, answers: QuizAnswer[]) =>
    api<AttemptResult>(`/v1/quizzes/${enc(quizId)}/attempts`, { body: { answers } }),
};

export const exercises = {
  submit: (exerciseId: string, code: string) =>
    api<SubmissionResult>(`/v1/exercises/${enc(exerciseId)}/submissions`, { body: { code } }),
};

export interface NewVersionBody {
  messages: PromptMessage[];
  variables: Record<string, unknown>;
  model: Record<string, unknown>;
  change_note: string;
}

export const admin = {
  prompts: (search: string, signal?: AbortSignal) =>
    api<PromptSummary[]>(`/v1/admin/prompts?search=${enc(search)}`, { signal }),
  prompt: (name: string, signal?: AbortSignal) =>
    api<PromptTemplate>(`/v1/admin/prompts/${enc(name)}`, { signal }),
  diff: (name: string, a: number, b: number) =>
    api<PromptDiff>(`/v1/admin/prompts/${enc(name)}/diff?a=${a}&b=${b}`),
  createVersion: (name: string, body: NewVersionBody) =>
    api<unknown>(`/v1/admin/prompts/${enc(name)}/versions`, { body }),
  moveLabel: (name: string, label: string, version: number) =>
    api<unknown>(`/v1/admin/prompts/${enc(name)}/labels/${enc(label)}`, {
      method: "PUT",
      body: { version },
    }),
  startExperiment: (
    name: string,
    body: { label: string; arms: { version: number; weight: number }[]; note: string },
  ) => api<unknown>(`/v1/admin/prompts/${enc(name)}/experiments`, { body }),
  stopExperiment: (id: string, promote: number | null) =>
    api<unknown>(`/v1/admin/experiments/${enc(id)}/stop`, {
      body: promote ? { promote } : {},
    }),
  experiment: (id: string) => api<ExperimentReport>(`/v1/admin/experiments/${enc(id)}`),
  analytics: (name: string, signal?: AbortSignal) =>
    api<AnalyticsRow[]>(`/v1/admin/analytics?name=${enc(name)}`, { signal }),
};
