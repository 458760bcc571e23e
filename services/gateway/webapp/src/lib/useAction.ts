import { useCallback, useState } from "react";
import { toApiError, type ApiError } from "../api/client";

export interface RunOptions {
  /** Called with the error when the action fails (after ``error`` is set). */
  onError?: (error: ApiError) => void;
  /** Stay busy after a success (the page moves on; the button must not come back). */
  keepBusy?: boolean;
}

export interface ActionState {
  busy: boolean;
  error: ApiError | null;
  setError: (error: ApiError | null) => void;
  /** Run ``action`` with ``busy`` set and the last error cleared; resolves to whether it succeeded. */
  run: (action: () => Promise<unknown>, options?: RunOptions) => Promise<boolean>;
}

/** The busy flag and the error of something a person starts (a form submission, a button). */
export function useAction(): ActionState {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const run = useCallback(async (action: () => Promise<unknown>, options: RunOptions = {}) => {
    setBusy(true);
    setError(null);
    try {
      await action();
      if (!options.keepBusy) setBusy(false);
      return true;
    } catch (err) {
      const failure = toApiError(err);
      setError(failure);
      options.onError?.(failure);
      setBusy(false);
      return false;
    }
  }, []);

  return { busy, error, setError, run };
}
