// Shapes of the gateway's REST API (/v1) and of its job events (SSE).

export interface TokenOut {
  access_token: string;
  user_id: string;
  is_guest: boolean;
  token_type?: string;
  expires_in?: number;
}

export interface Me {
  user_id: string;
  email: string | null;
  is_guest: boolean;
  role: string;
}

export type Level = "beginner" | "intermediate" | "advanced";
export type Style = "theory" | "practice" | "mixed";
export type Pace = "intensive" | "moderate" | "relaxed";
export type GoalContext = "academic" | "corporate" | "personal";

export interface CreateCourseBody {
  topic: string;
  level: Level;
  duration_hours: number;
  expectations: string;
  style: Style;
  pace: Pace;
  goal_context: GoalContext;
  language: string;
  auto_finalize: boolean;
}

export interface Accepted {
  job_id: string;
  events_url: string;
  course_id?: string;
}

export type CourseStatus = "planning" | "generating" | "ready" | "failed";

export interface CourseSummary {
  course_id: string;
  title: string | null;
  topic: string;
  status: CourseStatus;
  lessons_done: number;
  lessons_total: number;
  assessments_done: number;
  created_at: string;
}

export interface ChatTurn {
  id: string;
  seq: number;
  role: "user" | "assistant" | "system";
  kind: string;
  content: string;
  created_at: string;
}

export interface CourseModule {
  module_id: string;
  order: number;
  title: string;
  description: string;
  learning_objectives: string[];
  estimated_hours: number;
  lesson_status?: "pending" | "written" | "failed";
  lesson_id?: string | null;
  assessment_status?: "pending" | "ready" | "failed";
  quiz_id?: string | null;
  exercise_id?: string | null;
}

export interface CourseProgress {
  done: number;
  total: number;
  lessons_done?: number;
  assessments_done?: number;
  modules?: number;
}

export type JobKind =
  | "plan_course"
  | "refine_plan"
  | "finalize"
  | "revise_lesson"
  | "generate_exercise";

export interface CourseJob {
  job_id: string;
  kind: JobKind | string;
  status: string; // running | done | completed | failed
  events_url: string;
  created_at: string;
}

export interface Course {
  course_id: string;
  title: string | null;
  status: CourseStatus;
  profile: Partial<CreateCourseBody> & Record<string, unknown>;
  plan: string | null;
  chat: ChatTurn[];
  modules: CourseModule[];
  progress: CourseProgress | null;
  jobs: CourseJob[];
  /** What generating the course was estimated to take (from its finalisation). */
  estimate?: Estimate | null;
}

export interface LessonVersionInfo {
  version: number;
  created_at: string;
  feedback: string | null;
}

/** A file of the course's own materials (``GET /v1/courses/{id}/sources``). */
export interface Source {
  source_id: string;
  filename: string;
  kind: "markdown" | "text" | "html" | "pdf" | string;
  size_bytes: number;
  revision: number;
  chunks: number;
  pages: number | null;
  created_at: string;
  updated_at: string;
}

export interface SourceAccepted {
  course_id: string;
  job_id: string;
  events_url: string;
  source_id: string;
  filename: string;
  replaced: boolean;
}

/** A passage of the course's own sources a lesson cites as [S<n>] in its text. */
export interface Citation {
  marker: string;
  source_id: string;
  filename: string;
  page: number | null;
  section: string;
  chunk_id: string;
  quote: string;
}

export interface Lesson {
  lesson_id: string;
  order: number;
  version: number;
  title: string;
  markdown: string;
  versions: LessonVersionInfo[];
  citations?: Citation[];
}

export interface QuizQuestion {
  question_id: string;
  kind: "choice" | "open";
  question: string;
  options?: string[];
}

export interface Quiz {
  quiz_id: string;
  title: string;
  questions: QuizQuestion[];
}

export interface Exercise {
  exercise_id: string;
  title: string;
  difficulty: "easier" | "standard" | "harder" | string;
  statement: string;
  starter_code: string;
  visible_tests: string;
  hidden_test_count: number;
  hints: string[];
  verified: boolean;
  verification_note: string;
  language?: string;
}

export interface Assessment {
  quiz: Quiz;
  exercises: Exercise[];
  exercise_note: string;
  title?: string;
}

export type QuizAnswer =
  | { question_id: string; choice: number }
  | { question_id: string; text: string };

export interface QuestionResult {
  question_id: string;
  kind: "choice" | "open";
  score: number;
  max_score: number;
  feedback: string;
  correct?: boolean;
  choice?: number | null;
  correct_choice?: number;
  explanation?: string;
  model_answer?: string;
  text?: string;
}

export interface AttemptResult {
  score: number;
  max_score: number;
  percent: number;
  results: QuestionResult[];
}

export type SandboxStatus =
  | "completed"
  | "syntax_error"
  | "timeout"
  | "cpu_limit"
  | "memory_limit"
  | "blocked"
  | "crashed";

export interface TestResult {
  name: string;
  suite: "visible" | "hidden";
  status: "passed" | "failed" | "error";
  message: string;
  duration_ms: number;
}

export interface SubmissionResult {
  status: SandboxStatus | string;
  reason: string;
  passed: number;
  total: number;
  all_passed: boolean;
  output: string;
  tests: TestResult[];
}

export type RecommendationAction =
  | "take_quiz"
  | "revise_lesson"
  | "try_exercise"
  | "easier_exercise"
  | "harder_exercise"
  | "move_on"
  | "course_complete";

export interface Recommendation {
  action: RecommendationAction | string;
  lesson: { order: number; title: string };
  reason: string;
  difficulty?: string;
  exercise_id?: string;
  evidence: {
    order: number;
    quiz_percent: number | null;
    exercises_passed: number;
    exercises: number;
  }[];
}

// ---- prompt administration ----

export interface PromptSummary {
  name: string;
  task: string;
  description: string;
  versions: number;
  labels: Record<string, number>;
}

export interface PromptMessage {
  role: string;
  content: string;
}

export interface PromptVersion {
  version: number;
  messages: PromptMessage[];
  variables: Record<string, { type?: string; description?: string }>;
  model: Record<string, unknown>;
  change_note: string;
  created_by: string | null;
  created_at: string;
}

export interface ExperimentArm {
  version: number;
  weight: number;
}

export interface Experiment {
  experiment_id: string;
  label: string;
  arms: ExperimentArm[];
  status: string;
  note: string;
  started_at: string;
  stopped_at: string | null;
}

export interface PromptTemplate {
  name: string;
  task: string;
  description: string;
  labels: Record<string, number>;
  versions: PromptVersion[];
  experiments: Experiment[];
}

export interface PromptDiff {
  diff: string;
  identical: boolean;
}

export interface ArmReport {
  version: number;
  weight: number;
  calls: number;
  error_rate: number | null;
  p50_latency_ms: number | null;
  mean_output_tokens: number | null;
  mean_cost_usd: number | null;
  mean_quality: number | null;
  mean_rating: number | null;
  ratings: number;
}

export interface ExperimentReport {
  arms: ArmReport[];
  comparisons: {
    versions: number[];
    p_values: Record<string, number | null>;
    significant: Record<string, boolean>;
    enough_data: boolean;
  }[];
  note: string;
}

export interface AnalyticsRow {
  prompt_name: string;
  prompt_version: number;
  model: string;
  calls: number;
  error_rate: number | null;
  p50_latency_ms: number | null;
  p95_latency_ms: number | null;
  mean_input_tokens: number | null;
  mean_output_tokens: number | null;
  mean_cost_usd: number | null;
  total_cost_usd: number | null;
  mean_quality: number | null;
  mean_rating: number | null;
  ratings: number;
}

// ---- job events (SSE) ----

export interface EventEnvelope<P = Record<string, unknown>> {
  message_id?: string;
  job_id?: string;
  schema?: string;
  occurred_at?: string;
  payload: P;
}

export interface ChunkPayload {
  step: string;
  text: string;
  attempt?: number;
  index?: number;
  course_id?: string | null;
}

export interface PlanProposedPayload {
  course_id: string;
  plan_markdown: string;
}

export interface Estimate {
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number | null;
  model: string;
}

export interface PlanFinalizedPayload {
  course_id: string;
  title: string;
  modules: CourseModule[];
  estimate: Estimate;
}

export interface LessonWrittenPayload {
  course_id: string;
  module_id: string;
  lesson_id: string;
  order: number;
  title: string;
  version: number;
  markdown?: string;
}

export interface LessonRevisedPayload extends LessonWrittenPayload {
  previous_version?: number;
  feedback?: string;
}

export interface ExerciseSummary {
  exercise_id: string;
  title: string;
  difficulty: string;
  verified: boolean;
  verification_note: string;
}

export interface AssessmentReadyPayload {
  course_id: string;
  lesson_id: string;
  order: number;
  quiz_id: string;
  multiple_choice: number;
  open_questions: number;
  exercise: ExerciseSummary | null;
  exercise_note: string;
}

export interface ProgressPayload {
  course_id?: string;
  done: number;
  total: number;
  step?: "lesson" | "assessment";
  lessons_done?: number;
  assessments_done?: number;
}

export interface CourseReadyPayload {
  course_id: string;
  title: string;
  modules: {
    order: number;
    title: string;
    lesson_id: string;
    quiz_id: string | null;
    exercise_id: string | null;
  }[];
}

export interface ExerciseReadyPayload {
  course_id: string;
  lesson_id: string;
  order: number;
  exercise: ExerciseSummary;
}

export interface JobFailedPayload {
  reason: string;
  retryable: boolean;
  step?: string | null;
  course_id?: string | null;
}
