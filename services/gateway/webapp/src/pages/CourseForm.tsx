import { useState, type FormEvent } from "react";
import { ApiError, toApiError } from "../api/client";
import { courses } from "../api/endpoints";
import type {
  Accepted,
  CreateCourseBody,
  GoalContext,
  Level,
  Pace,
  Style,
} from "../api/types";
import { ErrorBox } from "../components/ErrorBox";

const LANGUAGE = /^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$/;

interface Values {
  topic: string;
  level: Level;
  duration: string;
  expectations: string;
  style: Style;
  pace: Pace;
  goal_context: GoalContext;
  language: string;
}

const INITIAL: Values = {
  topic: "",
  level: "beginner",
  duration: "10",
  expectations: "",
  style: "mixed",
  pace: "moderate",
  goal_context: "personal",
  language: "en",
};

type Problems = Partial<Record<keyof Values, string>>;

/** Client-side checks matching the API's rules (the server checks again). */
export function validateCourse(values: Values): Problems {
  const problems: Problems = {};
  const topic = values.topic.trim();
  if (topic.length < 2) problems.topic = "Say what you want to learn (at least 2 characters).";
  else if (topic.length > 200) problems.topic = "Keep the topic under 200 characters.";
  const hours = Number(values.duration);
  if (values.duration.trim() === "" || !Number.isFinite(hours)) {
    problems.duration = "Enter the study time in hours, for example 10.";
  } else if (hours <= 0) problems.duration = "The study time must be more than 0 hours.";
  else if (hours > 500) problems.duration = "The study time can be at most 500 hours.";
  if (values.expectations.length > 2000) {
    problems.expectations = "Keep this under 2000 characters.";
  }
  if (!LANGUAGE.test(values.language.trim())) {
    problems.language = 'Use a language code such as "en", "de" or "pt-BR".';
  }
  return problems;
}

export function toBody(values: Values): CreateCourseBody {
  return {
    topic: values.topic.trim(),
    level: values.level,
    duration_hours: Number(values.duration),
    expectations: values.expectations.trim(),
    style: values.style,
    pace: values.pace,
    goal_context: values.goal_context,
    language: values.language.trim(),
    auto_finalize: false,
  };
}

interface Props {
  onCreated: (created: Accepted & { course_id: string }) => void;
}

export function CourseForm({ onCreated }: Props) {
  const [values, setValues] = useState<Values>(INITIAL);
  const [problems, setProblems] = useState<Problems>({});
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  const set = <K extends keyof Values>(key: K, value: Values[K]) => {
    setValues((v) => ({ ...v, [key]: value }));
    if (problems[key]) setProblems((p) => ({ ...p, [key]: undefined }));
  };

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const found = validateCourse(values);
    setProblems(found);
    const firstBad = (Object.keys(found) as (keyof Values)[]).find((k) => found[k]);
    if (firstBad) {
      event.currentTarget.querySelector<HTMLElement>(`[name="${firstBad}"]`)?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onCreated(await courses.create(toBody(values)));
    } catch (err) {
      setError(toApiError(err));
      setBusy(false);
    }
  }

  const describe = (key: keyof Values) => (problems[key] ? `${key}-error` : undefined);
  const problem = (key: keyof Values) =>
    problems[key] ? (
      <small id={`${key}-error`} className="field-error">
        {problems[key]}
      </small>
    ) : null;

  return (
    <form className="form panel" onSubmit={submit} noValidate data-testid="course-form">
      <label className="field">
        <span>What do you want to learn?</span>
        <input
          name="topic"
          value={values.topic}
          onChange={(e) => set("topic", e.target.value)}
          placeholder="e.g. Python asyncio"
          maxLength={200}
          aria-invalid={problems.topic ? true : undefined}
          aria-describedby={describe("topic")}
          data-testid="topic"
          autoFocus
        />
        {problem("topic")}
      </label>

      <div className="grid-2">
        <label className="field">
          <span>Your level</span>
          <select
            name="level"
            value={values.level}
            onChange={(e) => set("level", e.target.value as Level)}
            data-testid="level"
          >
            <option value="beginner">Beginner</option>
            <option value="intermediate">Intermediate</option>
            <option value="advanced">Advanced</option>
          </select>
        </label>
        <label className="field">
          <span>Study time (hours)</span>
          <input
            name="duration"
            type="number"
            inputMode="decimal"
            min="0.5"
            max="500"
            step="0.5"
            value={values.duration}
            onChange={(e) => set("duration", e.target.value)}
            aria-invalid={problems.duration ? true : undefined}
            aria-describedby={describe("duration")}
            data-testid="duration"
          />
          {problem("duration")}
        </label>
      </div>

      <label className="field">
        <span>What do you hope to get out of it? (optional)</span>
        <textarea
          name="expectations"
          rows={3}
          value={values.expectations}
          onChange={(e) => set("expectations", e.target.value)}
          placeholder="e.g. Write a concurrent web scraper"
          aria-invalid={problems.expectations ? true : undefined}
          aria-describedby={describe("expectations")}
          data-testid="expectations"
        />
        {problem("expectations")}
      </label>

      <div className="grid-3">
        <label className="field">
          <span>Style</span>
          <select
            name="style"
            value={values.style}
            onChange={(e) => set("style", e.target.value as Style)}
            data-testid="style"
          >
            <option value="theory">Theory</option>
            <option value="practice">Practice</option>
            <option value="mixed">Mixed</option>
          </select>
        </label>
        <label className="field">
          <span>Pace</span>
          <select
            name="pace"
            value={values.pace}
            onChange={(e) => set("pace", e.target.value as Pace)}
            data-testid="pace"
          >
            <option value="intensive">Intensive</option>
            <option value="moderate">Moderate</option>
            <option value="relaxed">Relaxed</option>
          </select>
        </label>
        <label className="field">
          <span>Why you are learning</span>
          <select
            name="goal_context"
            value={values.goal_context}
            onChange={(e) => set("goal_context", e.target.value as GoalContext)}
            data-testid="goal-context"
          >
            <option value="personal">Personal interest</option>
            <option value="academic">Studies</option>
            <option value="corporate">Work</option>
          </select>
        </label>
      </div>

      <label className="field narrow-field">
        <span>Course language</span>
        <input
          name="language"
          value={values.language}
          onChange={(e) => set("language", e.target.value)}
          list="languages"
          autoComplete="off"
          aria-invalid={problems.language ? true : undefined}
          aria-describedby={describe("language") ?? "language-hint"}
          data-testid="language"
        />
        <datalist id="languages">
          <option value="en">English</option>
          <option value="de">Deutsch</option>
          <option value="es">Español</option>
          <option value="fr">Français</option>
          <option value="it">Italiano</option>
          <option value="pt-BR">Português (Brasil)</option>
          <option value="ru">Русский</option>
          <option value="zh">中文</option>
          <option value="ja">日本語</option>
        </datalist>
        {problem("language") ?? (
          <small id="language-hint" className="hint">
            A language code, such as en, de or pt-BR.
          </small>
        )}
      </label>

      <ErrorBox error={error} />
      <div className="actions">
        <button type="submit" className="button primary" disabled={busy} data-testid="create-course">
          {busy ? "Creating…" : "Plan my course"}
        </button>
      </div>
    </form>
  );
}
