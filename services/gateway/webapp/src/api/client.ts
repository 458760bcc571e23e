// The one way the app talks to the gateway: JSON over fetch with the bearer token,
// and errors turned into words a person understands.

const TOKEN_KEY = "lectern.token";

export function getToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage blocked (private mode): the session lasts as long as the page
  }
}

let onUnauthorized: (() => void) | null = null;

/** Called when the server refuses our token (expired, or signed with an old secret). */
export function setUnauthorizedHandler(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

export interface FieldError {
  field: string;
  message: string;
}

/** An API failure, with a message meant for the person using the app. */
export class ApiError extends Error {
  readonly status: number; // 0: the server could not be reached
  readonly fields: FieldError[];
  readonly retryable: boolean;

  constructor(status: number, message: string, fields: FieldError[] = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fields = fields;
    this.retryable = status === 0 || status === 408 || status === 429 || status >= 500;
  }
}

export const NETWORK_MESSAGE =
  "Could not reach the Lectern server. Check your connection and try again.";

function fieldPath(loc: unknown): string {
  if (!Array.isArray(loc)) return "";
  const parts = loc[0] === "body" || loc[0] === "query" || loc[0] === "path" ? loc.slice(1) : loc;
  let out = "";
  for (const part of parts) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

function statusMessage(status: number): string {
  switch (status) {
    case 400:
      return "The request was not accepted.";
    case 401:
      return "Your session has ended. Please sign in again.";
    case 403:
      return "You are not allowed to do that.";
    case 404:
      return "This was not found. It may have been removed, or the link is wrong.";
    case 409:
      return "That cannot be done right now.";
    case 413:
      return "That is too large to send.";
    case 422:
      return "Some of what you entered is not valid.";
    case 429:
      return "Too many requests. Wait a moment and try again.";
    case 502:
    case 503:
    case 504:
      return "The service is busy or restarting. Try again in a moment.";
    default:
      return status >= 500
        ? "Something went wrong on the server. Try again in a moment."
        : `The request failed (HTTP ${status}).`;
  }
}

/** Turn an error response body into a readable message plus per-field messages. */
export function describeError(status: number, body: unknown): ApiError {
  const detail =
    body && typeof body === "object" && "detail" in body
      ? (body as { detail: unknown }).detail
      : undefined;
  if (typeof detail === "string" && detail.trim()) {
    return new ApiError(status, detail.trim());
  }
  if (Array.isArray(detail)) {
    // FastAPI/pydantic: [{loc: ["body", "topic"], msg: "...", type: "..."}]
    const fields: FieldError[] = detail.map((item) => {
      const entry = (item ?? {}) as { loc?: unknown; msg?: unknown; message?: unknown };
      const message = String(entry.msg ?? entry.message ?? "is not valid");
      return { field: fieldPath(entry.loc), message: message.replace(/^Value error, /, "") };
    });
    const lines = fields.map((f) => (f.field ? `${f.field}: ${f.message}` : f.message));
    const message = lines.length ? lines.join("\n") : statusMessage(status);
    return new ApiError(status, message, fields);
  }
  if (detail && typeof detail === "object") {
    const obj = detail as { message?: unknown; reason?: unknown };
    const text = obj.message ?? obj.reason;
    if (typeof text === "string") return new ApiError(status, text);
  }
  return new ApiError(status, statusMessage(status));
}

/** Problems found before sending, as the kind of error the server gives for them (422). */
export function invalidFields(problems: FieldError[]): ApiError {
  return new ApiError(422, problems.map((p) => `${p.field}: ${p.message}`).join("\n"), problems);
}

/** Any thrown value as an ApiError (so components can show one kind of error). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof TypeError) return new ApiError(0, NETWORK_MESSAGE);
  if (err instanceof Error) return new ApiError(-1, err.message);
  return new ApiError(-1, String(err));
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/** Fetch with the token; throws ApiError on a network failure or a non-2xx answer. */
export async function apiRaw(path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let body: string | FormData | undefined;
  if (options.body instanceof FormData) {
    body = options.body; // a file upload: the browser writes the multipart boundary
  } else if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    response = await fetch(path, {
      method: options.method ?? (body === undefined ? "GET" : "POST"),
      headers,
      body,
      signal: options.signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, NETWORK_MESSAGE);
  }
  if (!response.ok) {
    let parsed: unknown = null;
    try {
      const text = await response.text();
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    const error = describeError(response.status, parsed);
    if (response.status === 401 && token && onUnauthorized) onUnauthorized();
    throw error;
  }
  return response;
}

/** A JSON API call; resolves to the parsed body (null for an empty one). */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await apiRaw(path, options);
  const text = await response.text();
  return (text ? JSON.parse(text) : null) as T;
}

/** ``events_url`` with a stream token as a query parameter (EventSource cannot send headers). */
export function withAccessToken(url: string, token: string | null): string {
  if (!token) return url;
  const sep = url.includes("?") ? "&" : "?";
  return `${url}${sep}access_token=${encodeURIComponent(token)}`;
}

/**
 * A short-lived token that opens one job's event stream and nothing else, so the
 * long-lived bearer token never goes into a URL (where proxies and logs keep it).
 */
export async function streamToken(jobId: string): Promise<string> {
  const out = await api<{ token: string; expires_in: number }>(
    `/v1/jobs/${encodeURIComponent(jobId)}/stream-token`,
    { method: "POST" },
  );
  return out.token;
}
