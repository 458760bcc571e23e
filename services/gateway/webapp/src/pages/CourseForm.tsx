import { useState, type ChangeEvent, type FormEvent } from "react";
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
import { useAction } from "../lib/useAction";

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

type TextKey = "topic" | "duration" | "expectations" | "language";
type ChoiceKey = "level" | "style" | "pace" | "goal_context";

const LEVELS: [Level, string][] = [
  ["beginner", "Beginner"],
  ["intermediate", "Intermediate"],
  ["advanced", "Advanced"],
];
const STYLES: [Style, string][] = [
  ["theory", "Theory"],
  ["practice", "Practice"],
  ["mixed", "Mixed"],
];
const PACES: [Pace, string][] = [
  ["intensive", "Intensive"],
  ["moderate", "Moderate"],
  ["relaxed", "Relaxed"],
];
const GOALS: [GoalContext, string][] = [
  ["personal", "Personal interest"],
  ["academic", "Studies"],
  ["corporate", "Work"],
];
const LANGUAGES: [string, string][] = [
  ["en", "English"],
  ["de", "Deutsch"],
  ["es", "Español"],
  ["fr", "Français"],
  ["it", "Italiano"],
  ["pt-BR", "Português (Brasil)"],
  ["ru", "Русский"],
  ["zh", "中文"],
  ["ja", "日本語"],
];

export function CourseForm({ onCreated }: Props) {
  const [values, setValues] = useState<Values>(INITIAL);
  const [problems, setProblems] = useState<Problems>({});
  const { busy, error, run } = useAction();

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
    // on success the page moves on: the button stays disabled
    await run(async () => onCreated(await courses.create(toBody(values))), { keepBusy: true });
  }

  const describe = (key: keyof Values) => (problems[key] ? `${key}-error` : undefined);
  const problem = (key: keyof Values) =>
    problems[key] ? (
      <small id={`${key}-error`} className="field-error">
        {problems[key]}
      </small>
    ) : null;
  /** The props a checked text field shares: its value, name, test id and error wiring. */
  const textField = (key: TextKey) => ({
    name: key,
    value: values[key],
    onChange: (e: ChangeEvent<HTMLInputElement | HTMLTextAreaElement>) => set(key, e.target.value),
    "aria-invalid": problems[key] ? true : undefined,
    "aria-describedby": describe(key),
    "data-testid": key,
  });
  const choiceField = <K extends ChoiceKey>(key: K, label: string, options: [Values[K], string][], testId: string = key) => (
    <SelectField
      label={label}
      name={key}
      value={values[key]}
      options={options}
      onChange={(value) => set(key, value)}
      testId={testId}
    />
  );

  return (
    <form className="form panel" onSubmit={submit} noValidate data-testid="course-form">
      <label className="field">
        <span>What do you want to learn?</span>
        <input {...textField("topic")} placeholder="e.g. Python asyncio" maxLength={200} autoFocus />
        {problem("topic")}
      </label>

      <div className="grid-2">
        {choiceField("level", "Your level", LEVELS)}
        <label className="field">
          <span>Study time (hours)</span>
          <input {...textField("duration")} type="number" inputMode="decimal" min="0.5" max="500" step="0.5" />
          {problem("duration")}
        </label>
      </div>

      <label className="field">
        <span>What do you hope to get out of it? (optional)</span>
        <textarea {...textField("expectations")} rows={3} placeholder="e.g. Write a concurrent web scraper" />
        {problem("expectations")}
      </label>

      <div className="grid-3">
        {choiceField("style", "Style", STYLES)}
        {choiceField("pace", "Pace", PACES)}
        {choiceField("goal_context", "Why you are learning", GOALS, "goal-context")}
      </div>

      <label className="field narrow-field">
        <span>Course language</span>
        <input
          {...textField("language")}
          list="languages"
          autoComplete="off"
          aria-describedby={describe("language") ?? "language-hint"}
        />
        <datalist id="languages">
          {LANGUAGES.map(([code, name]) => (
            <option key={code} value={code}>
              {name}
            </option>
          ))}
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

function SelectField<T extends string>({
  label,
  name,
  value,
  options,
  onChange,
  testId,
}: {
  label: string;
  name: string;
  value: T;
  options: [T, string][];
  onChange: (value: T) => void;
  testId: string;
}) {
  return (
    <label className="field">
      <span>{label}</span>
      <select name={name} value={value} onChange={(e) => onChange(e.target.value as T)} data-testid={testId}>
        {options.map(([option, text]) => (
          <option key={option} value={option}>
            {text}
          </option>
        ))}
      </select>
    </label>
  );
}
