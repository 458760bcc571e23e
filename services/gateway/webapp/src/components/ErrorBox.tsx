import type { ApiError } from "../api/client";

interface Props {
  error: ApiError | null;
  onRetry?: () => void;
  title?: string;
  "data-testid"?: string;
}

/** An error in words, the fields it concerns, and "Try again" where that may help. */
export function ErrorBox({ error, onRetry, title, ...rest }: Props) {
  if (!error) return null;
  const lines = error.fields.length
    ? error.fields.map((f) => (f.field ? `${f.field}: ${f.message}` : f.message))
    : null;
  return (
    <div className="error-box" role="alert" data-testid={rest["data-testid"] ?? "error"}>
      {title && <strong className="error-title">{title}</strong>}
      {lines ? (
        <ul className="error-fields">
          {lines.map((line, i) => (
            <li key={i}>{line}</li>
          ))}
        </ul>
      ) : (
        <p className="error-message">{error.message}</p>
      )}
      {onRetry && error.retryable && (
        <button type="button" className="button secondary" onClick={onRetry} data-testid="retry">
          Try again
        </button>
      )}
    </div>
  );
}
