import { useEffect, useRef } from "react";
import type { SubmissionResult } from "../api/types";
import { DataTable } from "../components/DataTable";

// What running a submission in the sandbox gave: in words, per test, and the output.

const STATUS_WORDS: Record<string, string> = {
  completed: "Your code ran to the end.",
  syntax_error: "Your code has a syntax error, so it could not run.",
  timeout: "Your code took too long and was stopped (time limit).",
  cpu_limit: "Your code used too much processor time and was stopped.",
  memory_limit: "Your code used too much memory and was stopped.",
  blocked: "Your code tried something the sandbox does not allow (such as network or file access).",
  crashed: "The run crashed before the tests finished.",
};

export function describeRun(result: SubmissionResult): string {
  const base = STATUS_WORDS[result.status] ?? `The run ended with status “${result.status}”.`;
  if (result.status === "completed") {
    return result.all_passed
      ? `All ${result.total} tests passed. Well done!`
      : `${base} ${result.passed} of ${result.total} tests passed.`;
  }
  return base;
}

export function RunResult({ result }: { result: SubmissionResult }) {
  const ref = useRef<HTMLElement>(null);
  useEffect(() => ref.current?.focus(), [result]);
  return (
    <section
      ref={ref}
      tabIndex={-1}
      className={`panel run-result ${result.all_passed ? "passed" : "failed"}`}
      data-testid="test-results"
      aria-live="polite"
    >
      <h2>
        {result.passed} / {result.total} tests passed
      </h2>
      <p data-testid="sandbox-status" data-status={result.status}>
        {describeRun(result)}
      </p>
      {result.reason && result.status !== "completed" && <p className="reason">{result.reason}</p>}
      {result.tests.length > 0 && (
        <DataTable columns={["Test", "Result", "Details"]} wrap={false}>
          {result.tests.map((t, i) => (
            <tr key={`${t.suite}-${t.name}-${i}`} className={`test-${t.status}`} data-testid="test-row">
              <td>
                <code>{t.name}</code> {t.suite === "hidden" && <span className="muted small">(hidden)</span>}
              </td>
              <td>
                <span className={`badge test-${t.status}`}>{t.status}</span>
              </td>
              <td className="test-message">{t.message}</td>
            </tr>
          ))}
        </DataTable>
      )}
      {result.output && (
        <details>
          <summary>Output</summary>
          <pre className="output">{result.output}</pre>
        </details>
      )}
    </section>
  );
}
