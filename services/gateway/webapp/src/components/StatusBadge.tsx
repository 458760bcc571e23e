const LABELS: Record<string, string> = {
  planning: "Planning the course",
  generating: "Writing lessons",
  ready: "Ready to take",
  failed: "Something went wrong",
};

/** The course status word (planning | generating | ready | failed) as a badge. */
export function StatusBadge({ status, testId }: { status: string; testId?: string }) {
  return (
    <span className={`badge status-${status}`} title={LABELS[status] ?? status} data-testid={testId}>
      {status}
    </span>
  );
}
