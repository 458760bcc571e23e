import type { StreamStatus } from "../stream/useJobStream";

/** Tells the person when live updates are interrupted, with a way to resume them. */
export function StreamNotice({ status, onReconnect }: { status: StreamStatus; onReconnect: () => void }) {
  if (status === "reconnecting") {
    return (
      <p className="notice" role="status" data-testid="stream-status">
        Connection lost. Reconnecting to live updates…
      </p>
    );
  }
  if (status === "error") {
    return (
      <div className="error-box" role="alert" data-testid="stream-status">
        <p>Live updates stopped. Nothing is lost: reconnect to catch up.</p>
        <button type="button" className="button secondary" onClick={onReconnect} data-testid="retry-stream">
          Try again
        </button>
      </div>
    );
  }
  return null;
}
