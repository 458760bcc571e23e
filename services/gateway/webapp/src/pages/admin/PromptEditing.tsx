import { useState, type FormEvent } from "react";
import { invalidFields, type FieldError } from "../../api/client";
import { admin } from "../../api/endpoints";
import type { PromptMessage, PromptTemplate } from "../../api/types";
import { ErrorBox } from "../../components/ErrorBox";
import { patchAt, removeAt } from "../../lib/lists";
import { useAction } from "../../lib/useAction";
import { sortedVersions, VersionSelect } from "./PromptVersions";

// Changing a template: moving a label (a release or a rollback) and saving a new version.

const LABEL_NAME = /^[a-z][a-z0-9_-]{0,99}$/;

export function LabelForm({ template: t, onDone }: { template: PromptTemplate; onDone: () => void }) {
  const labels = Object.keys(t.labels ?? {});
  const [label, setLabel] = useState(labels.includes("production") ? "production" : (labels[0] ?? "production"));
  const [version, setVersion] = useState(t.labels?.[label] ?? sortedVersions(t)[0]?.version ?? 1);
  const { busy, error, setError, run } = useAction();
  const [done, setDone] = useState<string | null>(null);

  async function submit(event?: FormEvent) {
    event?.preventDefault();
    const name = label.trim();
    if (!LABEL_NAME.test(name)) {
      setError(invalidFields([{ field: "label", message: "use lowercase letters, digits, - and _, starting with a letter" }]));
      return;
    }
    setDone(null);
    await run(async () => {
      await admin.moveLabel(t.name, name, version);
      setDone(`“${name}” now points at v${version}.`);
      onDone();
    });
  }

  return (
    <section className="panel" aria-labelledby="labels-title">
      <h2 id="labels-title">Move a label</h2>
      <p className="small muted">Running services pick the new version up at once; moving it back is a rollback.</p>
      <form className="inline-form" onSubmit={submit} data-testid="label-form">
        <label className="inline-field">
          <span>Label</span>
          <input
            value={label}
            list="label-names"
            onChange={(e) => {
              setLabel(e.target.value);
              const current = t.labels?.[e.target.value];
              if (current) setVersion(current);
            }}
            data-testid="label-name"
          />
          <datalist id="label-names">
            {labels.map((l) => (
              <option key={l} value={l} />
            ))}
          </datalist>
        </label>
        <VersionSelect template={t} value={version} onChange={setVersion} testId="label-version" label="to version" />
        <button type="submit" className="button secondary" disabled={busy} data-testid="move-label">
          Move label
        </button>
      </form>
      <ErrorBox error={error} onRetry={() => void submit()} />
      {done && (
        <p className="success" role="status">
          {done}
        </p>
      )}
    </section>
  );
}

/** ``text`` as a JSON object (empty text: ``{}``), or null when it is not one. */
function jsonObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text || "{}");
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function NewVersionForm({ template: t, onDone }: { template: PromptTemplate; onDone: () => void }) {
  const latest = sortedVersions(t)[0];
  const [messages, setMessages] = useState<PromptMessage[]>(() => latest?.messages.map((m) => ({ ...m })) ?? [{ role: "system", content: "" }]);
  const [variables, setVariables] = useState(() => JSON.stringify(latest?.variables ?? {}, null, 2));
  const [model, setModel] = useState(() => JSON.stringify(latest?.model ?? {}, null, 2));
  const [note, setNote] = useState("");
  const { busy, error, setError, run } = useAction();
  const [done, setDone] = useState<string | null>(null);

  const update = (i: number, patch: Partial<PromptMessage>) => setMessages((list) => patchAt(list, i, patch));

  async function submit(event?: FormEvent) {
    event?.preventDefault();
    const problems: FieldError[] = [];
    const vars = jsonObject(variables);
    if (!vars) problems.push({ field: "variables", message: "must be a JSON object" });
    const modelConfig = jsonObject(model);
    if (!modelConfig) problems.push({ field: "model", message: "must be a JSON object" });
    if (messages.length === 0 || messages.every((m) => !m.content.trim())) {
      problems.push({ field: "messages", message: "add at least one message" });
    }
    if (!note.trim()) problems.push({ field: "change_note", message: "say what changed and why" });
    if (problems.length || !vars || !modelConfig) {
      setError(invalidFields(problems));
      return;
    }
    setDone(null);
    await run(async () => {
      const created = (await admin.createVersion(t.name, {
        messages: messages.filter((m) => m.content.trim()),
        variables: vars,
        model: modelConfig,
        change_note: note.trim(),
      })) as { version?: number } | null;
      setDone(created?.version ? `Saved as v${created.version}. Move a label to it when it is ready.` : "Saved.");
      setNote("");
      onDone();
    });
  }

  return (
    <section className="panel" aria-labelledby="new-version-title">
      <h2 id="new-version-title">New version</h2>
      <p className="small muted">Versions are immutable: this saves a new one, based on v{latest?.version ?? 1}. No label moves.</p>
      <form className="form" onSubmit={submit} data-testid="new-version-form">
        {messages.map((m, i) => (
          <fieldset key={i} className="message-editor">
            <legend>Message {i + 1}</legend>
            <div className="inline-form">
              <label className="inline-field">
                <span>Role</span>
                <select value={m.role} onChange={(e) => update(i, { role: e.target.value })} data-testid={`message-role-${i}`}>
                  <option value="system">system</option>
                  <option value="user">user</option>
                  <option value="assistant">assistant</option>
                </select>
              </label>
              <button
                type="button"
                className="button ghost small"
                onClick={() => setMessages((list) => removeAt(list, i))}
                disabled={messages.length <= 1}
              >
                Remove
              </button>
            </div>
            <label className="field">
              <span className="sr-only">Content of message {i + 1}</span>
              <textarea
                className="mono"
                rows={Math.min(16, Math.max(4, m.content.split("\n").length + 1))}
                value={m.content}
                onChange={(e) => update(i, { content: e.target.value })}
                data-testid={`message-content-${i}`}
              />
            </label>
          </fieldset>
        ))}
        <button type="button" className="button ghost small" onClick={() => setMessages((list) => [...list, { role: "user", content: "" }])}>
          Add a message
        </button>
        <div className="grid-2">
          <label className="field">
            <span>Variables (JSON)</span>
            <textarea className="mono" rows={5} value={variables} onChange={(e) => setVariables(e.target.value)} data-testid="variables" />
          </label>
          <label className="field">
            <span>Model settings (JSON)</span>
            <textarea className="mono" rows={5} value={model} onChange={(e) => setModel(e.target.value)} data-testid="model" />
          </label>
        </div>
        <label className="field">
          <span>Change note (required)</span>
          <input value={note} onChange={(e) => setNote(e.target.value)} maxLength={2000} required data-testid="change-note" />
        </label>
        <ErrorBox error={error} onRetry={() => void submit()} />
        <button type="submit" className="button primary" disabled={busy} data-testid="save-version">
          {busy ? "Saving…" : "Save the new version"}
        </button>
        {done && (
          <p className="success" role="status">
            {done}
          </p>
        )}
      </form>
    </section>
  );
}
