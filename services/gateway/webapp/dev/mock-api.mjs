// A stand-in gateway for trying the web app without the Python services:
//   npm run build && node dev/mock-api.mjs        → http://127.0.0.1:5175
// It serves dist/ with the SPA fallback and fakes /v1 (REST + SSE) in memory, with
// scripted generation (plan chunks, lessons landing, a mermaid diagram, a quiz, an
// exercise). Only for local looks and manual checks: the real contract is the gateway's.
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const PORT = Number(process.env.PORT ?? 5175);
const DIST = fileURLToPath(new URL("../dist/", import.meta.url));
const STEP_MS = Number(process.env.STEP_MS ?? 60);

const tokens = new Map(); // token -> user
const courses = new Map(); // course_id -> course
const jobs = new Map(); // job_id -> { events: [], done, listeners:Set, course_id, kind, status }
let seq = 0;
const id = (p) => `${p}${(++seq).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const now = () => new Date().toISOString();

function send(res, status, body) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(body === undefined ? "" : JSON.stringify(body));
}

async function readBody(req) {
  let raw = "";
  for await (const chunk of req) raw += chunk;
  return raw ? JSON.parse(raw) : {};
}

function who(req, url) {
  const header = req.headers.authorization ?? "";
  const token = header.startsWith("Bearer ") ? header.slice(7) : url.searchParams.get("access_token");
  return tokens.get(token ?? "") ?? null;
}

function newJob(course_id, kind) {
  const job = { job_id: id("j"), kind, course_id, status: "running", events: [], listeners: new Set(), created_at: now() };
  jobs.set(job.job_id, job);
  courses.get(course_id)?.jobs.push(job);
  return job;
}

function emit(job, event, payload) {
  const e = { id: job.events.length + 1, event, data: { message_id: id("m"), job_id: job.job_id, schema: `${event}.v1`, occurred_at: now(), payload } };
  job.events.push(e);
  if (["course.plan_proposed", "course.ready", "lesson.revised", "exercise.ready", "job.failed"].includes(event)) {
    job.status = event === "job.failed" ? "failed" : "done";
  }
  for (const fn of job.listeners) fn(e);
}

const wait = (ms) => new Promise((r) => setTimeout(r, ms));

async function streamText(job, step, text, course_id, attempt = 1) {
  const pieces = text.match(/[\s\S]{1,18}/g) ?? [];
  for (const [index, piece] of pieces.entries()) {
    emit(job, "job.chunk", { step, text: piece, attempt, index, course_id });
    await wait(STEP_MS);
  }
}

function planFor(course, extra = "") {
  const t = course.profile.topic;
  return `# ${t}: your plan\n\nA ${course.profile.duration_hours}-hour course for a **${course.profile.level}** learner.\n\n## Module 1: Foundations of ${t}\nWhat it is and why it matters.\n\n## Module 2: ${t} in practice\nHands-on examples.\n\n## Module 3: Going further\nPatterns and pitfalls.${extra}\n`;
}

function lessonMarkdown(title, order) {
  return `# ${title}\n\nThis lesson covers **${title.toLowerCase()}**.\n\n<script>alert("not run")</script>\n\n## A diagram\n\n\`\`\`mermaid\ngraph TD\n  A[Start] --> B{Ready?}\n  B -->|yes| C[Lesson ${order}]\n  B -->|no| D[Read again]\n\`\`\`\n\n## Some code\n\n\`\`\`python\nimport asyncio\n\nasync def main() -> None:\n    await asyncio.sleep(1)\n    print("done")\n\nasyncio.run(main())\n\`\`\`\n\n> Tip: run it and watch the output.\n\n| Term | Meaning |\n| --- | --- |\n| coroutine | a function you can pause |\n| task | a scheduled coroutine |\n`;
}

async function runPlan(course, job, step, extra) {
  await wait(300);
  const plan = planFor(course, extra);
  // a cut first attempt, to show the restart
  if (step === "welcome_plan") {
    await streamText(job, step, "# Draft that gets cut...", course.course_id, 1);
  }
  await streamText(job, step, plan, course.course_id, step === "welcome_plan" ? 2 : 1);
  course.plan = plan;
  course.chat.push({ id: id("t"), seq: course.chat.length + 1, role: "assistant", kind: "plan", content: plan, created_at: now() });
  emit(job, "course.plan_proposed", { course_id: course.course_id, chat_message_id: "x", plan_markdown: plan, model: "mock", input_tokens: 10, output_tokens: 10 });
}

async function runFinalize(course, job) {
  await wait(300);
  course.status = "generating";
  course.title = `${course.profile.topic} in practice`;
  const titles = ["Foundations", "In practice", "Going further"];
  course.modules = titles.map((t, i) => ({
    module_id: id("mod"), order: i + 1, title: `${t}`, description: `Module ${i + 1} of the course.`,
    learning_objectives: [`Explain ${t.toLowerCase()}`, `Use it in a small program`], estimated_hours: 2,
    lesson_status: "pending", lesson_id: null, assessment_status: "pending", quiz_id: null, exercise_id: null,
  }));
  const total = course.modules.length * 2;
  course.progress = { done: 0, total, lessons_done: 0, assessments_done: 0, modules: course.modules.length };
  emit(job, "course.plan_finalized", {
    course_id: course.course_id, title: course.title, modules: course.modules,
    estimate: { calls: 6, input_tokens: 18400, output_tokens: 24100, cost_usd: 0.37, model: "mock-large" },
  });
  for (const m of course.modules) {
    await streamText(job, `lesson:${m.order}`, lessonMarkdown(m.title, m.order).slice(0, 120), course.course_id);
    m.lesson_status = "written";
    m.lesson_id = id("l");
    course.lessons.set(m.order, [{ version: 1, markdown: lessonMarkdown(m.title, m.order), created_at: now(), feedback: null }]);
    emit(job, "lesson.written", { course_id: course.course_id, module_id: m.module_id, lesson_id: m.lesson_id, order: m.order, title: m.title, version: 1, markdown: "" });
    course.progress.done += 1;
    course.progress.lessons_done += 1;
    emit(job, "course.progress", { course_id: course.course_id, ...course.progress, step: "lesson" });
    await wait(STEP_MS * 4);
  }
  for (const m of course.modules) {
    m.assessment_status = "ready";
    m.quiz_id = id("q");
    m.exercise_id = id("e");
    course.exercises.set(m.order, [exercise(m.exercise_id, "standard")]);
    emit(job, "assessment.ready", { course_id: course.course_id, lesson_id: m.lesson_id, order: m.order, quiz_id: m.quiz_id, multiple_choice: 2, open_questions: 1, exercise: null, exercise_note: "" });
    course.progress.done += 1;
    course.progress.assessments_done += 1;
    emit(job, "course.progress", { course_id: course.course_id, ...course.progress, step: "assessment" });
    await wait(STEP_MS * 3);
  }
  course.status = "ready";
  emit(job, "course.ready", { course_id: course.course_id, title: course.title, modules: course.modules.map((m) => ({ order: m.order, title: m.title, lesson_id: m.lesson_id, quiz_id: m.quiz_id, exercise_id: m.exercise_id })) });
}

function exercise(exercise_id, difficulty) {
  return {
    exercise_id, title: difficulty === "easier" ? "Square a number" : "Sum of squares", difficulty,
    statement: "Write a function `sum_squares(n)` that returns 1² + 2² + … + n².",
    starter_code: "def sum_squares(n):\n    # your code here\n    pass\n",
    visible_tests: "def test_small():\n    assert sum_squares(2) == 5\n\ndef test_zero():\n    assert sum_squares(0) == 0\n",
    hidden_test_count: 2, hints: ["Loop from 1 to n.", "Square each number.", "Add them up with sum()."],
    verified: true, verification_note: "A reference solution passed every test.", language: "python",
  };
}

const QUIZ = {
  title: "Check your understanding",
  questions: [
    { question_id: "q1", kind: "choice", question: "What does `await` do?", options: ["Blocks the thread", "Suspends the coroutine so the loop can run others", "Starts a new process"] },
    { question_id: "q2", kind: "choice", question: "Which call runs the event loop?", options: ["asyncio.run()", "asyncio.sleep()"] },
    { question_id: "q3", kind: "open", question: "In one sentence, what is a task?" },
  ],
};

async function api(req, res, url) {
  const path = url.pathname;
  const method = req.method ?? "GET";
  if (path === "/v1/auth/guest" && method === "POST") {
    const token = id("tok");
    const user = { user_id: id("u"), email: null, is_guest: true, role: "learner" };
    tokens.set(token, user);
    return send(res, 201, { access_token: token, user_id: user.user_id, is_guest: true, token_type: "bearer" });
  }
  if ((path === "/v1/auth/register" || path === "/v1/auth/login") && method === "POST") {
    const body = await readBody(req);
    if (!String(body.email ?? "").includes("@")) {
      return send(res, 422, { detail: [{ loc: ["body", "email"], msg: "value is not a valid email address", type: "value_error" }] });
    }
    if (String(body.password ?? "").length < 8) {
      return send(res, 422, { detail: [{ loc: ["body", "password"], msg: "String should have at least 8 characters", type: "string_too_short" }] });
    }
    if (path.endsWith("login") && body.password !== "password123") return send(res, 401, { detail: "Wrong email or password." });
    const token = id("tok");
    const user = { user_id: id("u"), email: body.email, is_guest: false, role: body.email.startsWith("admin") ? "admin" : "learner" };
    tokens.set(token, user);
    return send(res, path.endsWith("login") ? 200 : 201, { access_token: token, user_id: user.user_id, is_guest: false });
  }
  const user = who(req, url);
  if (!user) return send(res, 401, { detail: "missing bearer token: get one from POST /v1/auth/guest" });
  if (path === "/v1/auth/me") return send(res, 200, user);

  const streamToken = /^\/v1\/jobs\/([^/]+)\/stream-token$/.exec(path);
  if (streamToken && method === "POST") {
    if (!jobs.has(streamToken[1])) return send(res, 404, { detail: "job not found" });
    const token = id("stream"); // the real one opens that job's stream only, for 120 s
    tokens.set(token, user);
    return send(res, 200, { token, expires_in: 120 });
  }

  const jobEvents = /^\/v1\/jobs\/([^/]+)\/events$/.exec(path);
  if (jobEvents) {
    const job = jobs.get(jobEvents[1]);
    if (!job) return send(res, 404, { detail: "job not found" });
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" });
    const after = Number(req.headers["last-event-id"] ?? 0);
    const write = (e) => {
      res.write(`id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
      if (["course.plan_proposed", "course.ready", "lesson.revised", "exercise.ready", "job.failed"].includes(e.event)) {
        if (!(job.kind === "finalize" && e.event === "course.plan_proposed")) {
          job.listeners.delete(write);
          res.end();
        }
      }
    };
    for (const e of job.events.filter((e) => e.id > after)) write(e);
    if (!res.writableEnded) {
      job.listeners.add(write);
      req.on("close", () => job.listeners.delete(write));
    }
    return;
  }

  if (path === "/v1/courses" && method === "GET") {
    return send(res, 200, [...courses.values()].filter((c) => c.user_id === user.user_id).reverse().map((c) => ({
      course_id: c.course_id, title: c.title, topic: c.profile.topic, status: c.status,
      lessons_done: c.progress?.lessons_done ?? 0, lessons_total: c.modules.length, assessments_done: c.progress?.assessments_done ?? 0, created_at: c.created_at,
    })));
  }
  if (path === "/v1/courses" && method === "POST") {
    const body = await readBody(req);
    if (String(body.topic ?? "").trim().length < 2) {
      return send(res, 422, { detail: [{ loc: ["body", "topic"], msg: "String should have at least 2 characters", type: "string_too_short" }] });
    }
    const course = {
      course_id: id("c"), user_id: user.user_id, title: null, status: "planning", profile: body, plan: null, chat: [],
      modules: [], progress: null, jobs: [], lessons: new Map(), exercises: new Map(), created_at: now(),
    };
    courses.set(course.course_id, course);
    const job = newJob(course.course_id, "plan_course");
    void runPlan(course, job, "welcome_plan", "");
    return send(res, 202, { course_id: course.course_id, job_id: job.job_id, events_url: `/v1/jobs/${job.job_id}/events` });
  }
  const m = /^\/v1\/courses\/([^/]+)(\/.*)?$/.exec(path);
  if (!m) return send(res, 404, { detail: "Not Found" });
  const course = courses.get(m[1]);
  if (!course || course.user_id !== user.user_id) return send(res, 404, { detail: `course ${m[1]} not found` });
  const rest = m[2] ?? "";
  const view = () => ({
    course_id: course.course_id, title: course.title, status: course.status, profile: course.profile, plan: course.plan, chat: course.chat,
    modules: course.modules, progress: course.progress,
    jobs: course.jobs.map((j) => ({ job_id: j.job_id, kind: j.kind, status: j.status, events_url: `/v1/jobs/${j.job_id}/events`, created_at: j.created_at })),
  });
  if (rest === "" && method === "GET") {
    if (!course.plan) return send(res, 409, { detail: `course ${course.course_id} is still being planned: wait for course.plan_proposed on its job's events` });
    return send(res, 200, view());
  }
  if (rest === "/messages" && method === "POST") {
    if (course.status !== "planning") return send(res, 409, { detail: "the plan can only be refined before it is finalised" });
    const body = await readBody(req);
    course.chat.push({ id: id("t"), seq: course.chat.length + 1, role: "user", kind: "request", content: body.text, created_at: now() });
    const job = newJob(course.course_id, "refine_plan");
    void runPlan(course, job, "refine_plan", `\n\n## Module 4: ${body.text}\nAdded at your request.`);
    return send(res, 202, { job_id: job.job_id, events_url: `/v1/jobs/${job.job_id}/events` });
  }
  if (rest === "/finalize" && method === "POST") {
    const job = newJob(course.course_id, "finalize");
    void runFinalize(course, job);
    return send(res, 202, { job_id: job.job_id, events_url: `/v1/jobs/${job.job_id}/events` });
  }
  if (rest === "/recommendation") {
    return send(res, 200, {
      course_id: course.course_id, action: "take_quiz", lesson: { order: 1, title: course.modules[0]?.title ?? "" },
      reason: "You have not taken a quiz yet: start with lesson 1's to see where you stand.",
      evidence: course.modules.map((x) => ({ order: x.order, quiz_percent: null, exercises_passed: 0, exercises: 1 })),
    });
  }
  if (rest.startsWith("/export")) {
    const format = url.searchParams.get("format") ?? "markdown";
    res.writeHead(200, { "Content-Type": format === "html" ? "text/html" : "text/markdown", "Content-Disposition": `attachment; filename="course.${format === "html" ? "html" : "md"}"` });
    return res.end(course.plan ?? "");
  }
  const lesson = /^\/lessons\/(\d+)(\/.*)?$/.exec(rest);
  if (lesson) {
    const n = Number(lesson[1]);
    const versions = course.lessons.get(n);
    if (!versions) return send(res, 404, { detail: `lesson ${n} not found` });
    const sub = lesson[2] ?? "";
    const mod = course.modules[n - 1];
    if (sub === "" && method === "GET") {
      const v = Number(url.searchParams.get("version")) || versions.length;
      const chosen = versions[v - 1];
      return send(res, 200, {
        lesson_id: mod.lesson_id, order: n, version: v, title: mod.title, markdown: chosen.markdown,
        versions: versions.map((x, i) => ({ version: i + 1, created_at: x.created_at, feedback: x.feedback })),
      });
    }
    if (sub === "/revise" && method === "POST") {
      const body = await readBody(req);
      const job = newJob(course.course_id, "revise_lesson");
      void (async () => {
        await wait(300);
        const text = `# ${mod.title} (revised)\n\nRewritten after your feedback: *${body.feedback}*.\n\n` + lessonMarkdown(mod.title, n).split("\n").slice(2).join("\n");
        await streamText(job, `revise:${n}`, text, course.course_id);
        versions.push({ version: versions.length + 1, markdown: text, created_at: now(), feedback: body.feedback });
        emit(job, "lesson.revised", { course_id: course.course_id, module_id: mod.module_id, lesson_id: mod.lesson_id, order: n, title: mod.title, version: versions.length, markdown: text, previous_version: versions.length - 1, feedback: body.feedback });
      })();
      return send(res, 202, { job_id: job.job_id, events_url: `/v1/jobs/${job.job_id}/events` });
    }
    if (sub === "/assessment") {
      return send(res, 200, { quiz: { quiz_id: mod.quiz_id, ...QUIZ }, exercises: course.exercises.get(n) ?? [], exercise_note: "" });
    }
    if (sub === "/exercises" && method === "POST") {
      const body = await readBody(req);
      const job = newJob(course.course_id, "generate_exercise");
      void (async () => {
        await wait(1200);
        const ex = exercise(id("e"), body.difficulty);
        course.exercises.get(n).push(ex);
        emit(job, "exercise.ready", { course_id: course.course_id, lesson_id: mod.lesson_id, order: n, exercise: { exercise_id: ex.exercise_id, title: ex.title, difficulty: ex.difficulty, verified: true, verification_note: "" } });
      })();
      return send(res, 202, { job_id: job.job_id, events_url: `/v1/jobs/${job.job_id}/events` });
    }
  }
  return send(res, 404, { detail: "Not Found" });
}

async function other(req, res, url) {
  const path = url.pathname;
  const method = req.method ?? "GET";
  const quiz = /^\/v1\/quizzes\/([^/]+)\/attempts$/.exec(path);
  if (quiz && method === "POST") {
    const { answers } = await readBody(req);
    const by = new Map(answers.map((a) => [a.question_id, a]));
    const results = [
      { question_id: "q1", kind: "choice", max_score: 1, correct_choice: 1, choice: by.get("q1")?.choice ?? null, explanation: "await hands control back to the event loop until the awaited thing is done." },
      { question_id: "q2", kind: "choice", max_score: 1, correct_choice: 0, choice: by.get("q2")?.choice ?? null, explanation: "asyncio.run() creates the loop, runs the coroutine and closes the loop." },
    ].map((r) => ({ ...r, correct: r.choice === r.correct_choice, score: r.choice === r.correct_choice ? 1 : 0, feedback: r.choice === null ? "Not answered." : r.choice === r.correct_choice ? r.explanation : "That option does not describe it." }));
    const text = by.get("q3")?.text ?? "";
    results.push({ question_id: "q3", kind: "open", max_score: 1, score: text ? 0.5 : 0, text, feedback: text ? "Good start; mention that the loop schedules it." : "Not answered.", model_answer: "A task wraps a coroutine and schedules it on the event loop." });
    const score = results.reduce((s, r) => s + r.score, 0);
    return send(res, 201, { score, max_score: 3, percent: Math.round((100 * score) / 3), results });
  }
  const sub = /^\/v1\/exercises\/([^/]+)\/submissions$/.exec(path);
  if (sub && method === "POST") {
    const { code } = await readBody(req);
    if (/import\s+socket/.test(code)) {
      return send(res, 201, { status: "blocked", reason: "network access is not allowed", passed: 0, total: 4, all_passed: false, output: "", tests: [] });
    }
    const ok = /sum\(/.test(code);
    const tests = ["test_small", "test_zero", "hidden_1", "hidden_2"].map((name, i) => ({
      name, suite: i < 2 ? "visible" : "hidden", status: ok || i === 1 ? "passed" : "failed",
      message: ok || i === 1 ? "" : i < 2 ? "assert None == 5" : "A hidden check did not hold.", duration_ms: 1.2,
    }));
    const passed = tests.filter((t) => t.status === "passed").length;
    return send(res, 201, { status: "completed", reason: "", passed, total: 4, all_passed: passed === 4, output: ok ? "" : "AssertionError", tests });
  }
  if (path === "/v1/feedback" && method === "POST") return send(res, 201, { ok: true });
  if (path.startsWith("/v1/admin/")) return adminApi(req, res, url);
  return send(res, 404, { detail: "Not Found" });
}

const PROMPT = {
  name: "planner.welcome_plan", task: "plan_course", description: "Drafts the first plan from the learner profile.",
  labels: { production: 2, staging: 3 },
  versions: [1, 2, 3].map((v) => ({
    version: v,
    messages: [
      { role: "system", content: `You are a course planner (v${v}).\nWrite a plan in markdown.${v > 1 ? "\nKeep modules short." : ""}` },
      { role: "user", content: "Topic: {{topic}}\nLevel: {{level}}" },
    ],
    variables: { topic: { type: "string", description: "What to learn" }, level: { type: "string", description: "Learner level" } },
    model: { temperature: 0.3 + v / 10 }, change_note: v === 1 ? "First version" : `Tweak ${v}`, created_by: "admin", created_at: now(),
  })),
  experiments: [{ experiment_id: "x1", label: "production", arms: [{ version: 2, weight: 50 }, { version: 3, weight: 50 }], status: "running", note: "shorter modules?", started_at: now(), stopped_at: null }],
};

async function adminApi(req, res, url) {
  const user = who(req, url);
  if (user.role !== "admin") return send(res, 403, { detail: "prompt administration needs the admin role" });
  const path = url.pathname;
  if (path === "/v1/admin/prompts") {
    return send(res, 200, [{ name: PROMPT.name, task: PROMPT.task, description: PROMPT.description, versions: PROMPT.versions.length, labels: PROMPT.labels },
      { name: "content.write_lesson", task: "write_lesson", description: "Writes one lesson.", versions: 1, labels: { production: 1 } }]
      .filter((p) => p.name.includes(url.searchParams.get("search") ?? "")));
  }
  if (path === `/v1/admin/prompts/${PROMPT.name}`) return send(res, 200, PROMPT);
  if (path === `/v1/admin/prompts/${PROMPT.name}/diff`) {
    const a = url.searchParams.get("a"), b = url.searchParams.get("b");
    return send(res, 200, { identical: a === b, diff: `--- v${a}\n+++ v${b}\n@@ -1,3 +1,4 @@\n system: You are a course planner\n-Write a plan in markdown.\n+Write a plan in markdown.\n+Keep modules short.\n user: Topic: {{topic}}` });
  }
  if (path === "/v1/admin/experiments/x1") {
    return send(res, 200, { arms: [2, 3].map((v) => ({ version: v, weight: 50, calls: 40 + v, error_rate: 0.02 * v, p50_latency_ms: 900 + v * 10, mean_output_tokens: 800, mean_cost_usd: 0.004, mean_quality: 0.7 + v / 50, mean_rating: 4.1, ratings: 12 })),
      comparisons: [{ versions: [2, 3], p_values: { error_rate: 0.41, quality: 0.03, rating: 0.6 }, significant: { error_rate: false, quality: true, rating: false }, enough_data: true }], note: "Two-sided tests." });
  }
  if (path === "/v1/admin/analytics") {
    return send(res, 200, [1, 2, 3].map((v) => ({ prompt_name: PROMPT.name, prompt_version: v, model: "mock-large", calls: 20 * v, error_rate: 0.01 * v, p50_latency_ms: 800 + v * 40, p95_latency_ms: 1500 + v * 120, mean_input_tokens: 900, mean_output_tokens: 700, mean_cost_usd: 0.003 * v, total_cost_usd: 0.06 * v * v, mean_quality: 0.6 + v / 20, mean_rating: 3.8 + v / 10, ratings: 5 * v })));
  }
  if (req.method !== "GET") return send(res, 201, { version: PROMPT.versions.length + 1 });
  return send(res, 404, { detail: "Not Found" });
}

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json" };

createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  if (url.pathname.startsWith("/v1/")) {
    const handler = /^\/v1\/(auth|courses|jobs)/.test(url.pathname) ? api : other;
    const user = who(req, url);
    if (handler === other && !user) return send(res, 401, { detail: "missing bearer token" });
    handler(req, res, url).catch((err) => send(res, 500, { detail: String(err) }));
    return;
  }
  let file = normalize(join(DIST, url.pathname));
  if (!file.startsWith(DIST) || !existsSync(file) || statSync(file).isDirectory()) file = join(DIST, "index.html");
  res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" });
  createReadStream(file).pipe(res);
}).listen(PORT, "127.0.0.1", () => console.log(`mock gateway on http://127.0.0.1:${PORT}`));
