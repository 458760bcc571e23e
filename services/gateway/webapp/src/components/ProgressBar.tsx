interface Props {
  done: number;
  total: number;
  label?: string;
}

/** Course generation progress: "N / M" with aria-valuenow/aria-valuemax. */
export function ProgressBar({ done, total, label = "Course progress" }: Props) {
  const max = Math.max(0, total);
  const now = Math.min(Math.max(0, done), max);
  const percent = max > 0 ? Math.round((now / max) * 100) : 0;
  return (
    <div
      className="progress"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={max}
      aria-valuenow={now}
      aria-valuetext={`${now} of ${max} steps done`}
      data-testid="progress"
    >
      <div className="progress-track" aria-hidden="true">
        <div className="progress-fill" style={{ width: `${percent}%` }} />
      </div>
      <span className="progress-text">
        {now} / {max}
      </span>
    </div>
  );
}
