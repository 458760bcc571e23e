import { vi } from "vitest";

type Listener = (event: MessageEvent) => void;

/** A stand-in for the browser's EventSource that tests drive by hand. */
export class MockEventSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  static instances: MockEventSource[] = [];

  readonly url: string;
  readyState = MockEventSource.CONNECTING;
  onopen: ((event: Event) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  private listeners = new Map<string, Set<Listener>>();

  constructor(url: string) {
    this.url = url;
    MockEventSource.instances.push(this);
  }

  addEventListener(type: string, listener: Listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)!.add(listener);
  }

  removeEventListener(type: string, listener: Listener) {
    this.listeners.get(type)?.delete(listener);
  }

  close() {
    this.readyState = MockEventSource.CLOSED;
  }

  get closed() {
    return this.readyState === MockEventSource.CLOSED;
  }

  open() {
    this.readyState = MockEventSource.OPEN;
    this.onopen?.(new Event("open"));
  }

  /** Deliver one SSE event (ignored once closed, like a real EventSource). */
  emit(type: string, id: number | string, payload: unknown) {
    if (this.closed) return;
    const event = new MessageEvent(type, {
      data: JSON.stringify({ message_id: `m${id}`, job_id: "job", schema: `${type}.v1`, payload }),
      lastEventId: String(id),
    });
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }

  fail(readyState = MockEventSource.CLOSED) {
    this.readyState = readyState;
    this.onerror?.(new Event("error"));
  }

  static latest(): MockEventSource {
    const last = MockEventSource.instances[MockEventSource.instances.length - 1];
    if (!last) throw new Error("no EventSource was opened");
    return last;
  }
}

export function installEventSource() {
  MockEventSource.instances = [];
  vi.stubGlobal("EventSource", MockEventSource);
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

export type Route = (url: string, init: RequestInit) => Response | Promise<Response> | undefined;

const STREAM_TOKEN = /^\/v1\/jobs\/([^/?]+)\/stream-token$/;

/** What the gateway answers ``POST /v1/jobs/{id}/stream-token`` with: ``stream-<job id>``. */
export function streamTokenAnswer(url: string, init: RequestInit): Response | undefined {
  const job = STREAM_TOKEN.exec(url);
  if (!job || init.method !== "POST") return undefined;
  return json({ token: `stream-${decodeURIComponent(job[1])}`, expires_in: 120 });
}

/** Stub fetch with a router; every call is recorded on the returned mock. Stream tokens
 * are handed out unless the router answers for them itself. */
export function mockFetch(route: Route) {
  const fn = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = typeof input === "string" ? input : input.toString();
    const answer = (await route(url, init)) ?? streamTokenAnswer(url, init);
    if (!answer) throw new Error(`unexpected request: ${init.method ?? "GET"} ${url}`);
    return answer;
  });
  vi.stubGlobal("fetch", fn);
  return fn;
}

/** The parsed JSON body of the n-th call to a fetch mock. */
export function bodyOf(fetchMock: ReturnType<typeof mockFetch>, index: number): unknown {
  const init = fetchMock.mock.calls[index]?.[1] as RequestInit | undefined;
  return init?.body ? JSON.parse(String(init.body)) : undefined;
}
