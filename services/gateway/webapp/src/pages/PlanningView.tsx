import { useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import type { ApiError } from "../api/client";
import type { ChatTurn, Course } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { Loading } from "../components/Loading";
import { Markdown } from "../markdown/Markdown";
import type { StreamState } from "../stream/reducer";

// A course while its plan is shaped: the plan as it streams in, and the chat that changes it.

export interface PlanningProps {
  course: Course | null;
  stream: StreamState;
  planJobRunning: boolean;
  busy: boolean;
  pendingMessage: string | null;
  onSend: (text: string) => Promise<boolean>;
  onFinalize: () => void;
  error: ApiError | null;
  onRetry?: () => void;
}

export function PlanningView(props: PlanningProps) {
  const { course, stream, planJobRunning, busy, pendingMessage } = props;
  const [text, setText] = useState("");
  const streaming = stream.steps.refine_plan?.text ?? stream.steps.welcome_plan?.text ?? null;
  const plan = streaming ?? stream.plan ?? course?.plan ?? null;
  const formRef = useRef<HTMLFormElement>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const message = text.trim();
    if (!message || busy || planJobRunning) return;
    if (await props.onSend(message)) setText("");
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    // Enter sends, Shift+Enter starts a new line
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      formRef.current?.requestSubmit();
    }
  }

  return (
    <div className="planning">
      <section className="panel plan-panel" aria-labelledby="plan-title">
        <div className="panel-head">
          <h2 id="plan-title">The plan</h2>
          {planJobRunning && (
            <span className="live" role="status">
              <span className="pulse" aria-hidden="true" /> Writing…
            </span>
          )}
        </div>
        <div data-testid="plan" className="plan" aria-busy={planJobRunning}>
          {plan ? (
            <Markdown source={plan} diagrams={!streaming} />
          ) : (
            <Loading label="Lectern is drafting a plan for you…" />
          )}
        </div>
      </section>

      <aside className="panel chat-panel" aria-labelledby="chat-title">
        <h2 id="chat-title">Shape the plan</h2>
        <ChatHistory chat={course?.chat ?? []} pending={pendingMessage} />
        <form ref={formRef} className="chat-form" onSubmit={submit}>
          <label htmlFor="chat-input" className="sr-only">
            What should change in the plan?
          </label>
          <textarea
            id="chat-input"
            rows={3}
            value={text}
            onChange={(e) => setText(e.target.value)}
            onKeyDown={onKeyDown}
            placeholder="e.g. Add a module on testing and drop the history part"
            maxLength={4000}
            disabled={planJobRunning}
            data-testid="chat-input"
          />
          <div className="actions">
            <button
              type="submit"
              className="button secondary"
              disabled={busy || planJobRunning || !text.trim()}
              data-testid="send-message"
            >
              Send
            </button>
            <button
              type="button"
              className="button primary"
              onClick={props.onFinalize}
              disabled={busy || planJobRunning || !plan}
              data-testid="finalize"
            >
              Finalise the plan
            </button>
          </div>
          <p className="hint">
            Enter sends, Shift+Enter starts a new line. When the plan looks right, finalise it and
            the lessons get written.
          </p>
        </form>
        <ErrorBox error={props.error} onRetry={props.onRetry} />
      </aside>
    </div>
  );
}

function ChatHistory({ chat, pending }: { chat: ChatTurn[]; pending: string | null }) {
  const turns = chat.filter((t) => t.role === "user" || t.role === "assistant");
  const lastUser = [...turns].reverse().find((t) => t.role === "user");
  const showPending = pending && lastUser?.content !== pending;
  let planNumber = 0;
  if (turns.length === 0 && !showPending) {
    return <p className="muted small">Ask for changes here: topics to add or drop, more practice, a different order…</p>;
  }
  return (
    <ol className="chat" data-testid="chat" aria-label="Planning chat">
      {turns.map((turn) =>
        turn.role === "user" ? (
          <UserTurn key={turn.id} text={turn.content} />
        ) : (
          <li key={turn.id} className="chat-turn assistant" data-testid="chat-assistant">
            <details>
              <summary>
                <span className="chat-who">Lectern</span> Plan, version {++planNumber}
              </summary>
              <Markdown source={turn.content} diagrams={false} />
            </details>
          </li>
        ),
      )}
      {showPending && <UserTurn text={pending} pending />}
    </ol>
  );
}

function UserTurn({ text, pending = false }: { text: string; pending?: boolean }) {
  return (
    <li className={pending ? "chat-turn user pending" : "chat-turn user"} data-testid="chat-user">
      <span className="chat-who">You</span>
      <p>{text}</p>
    </li>
  );
}
