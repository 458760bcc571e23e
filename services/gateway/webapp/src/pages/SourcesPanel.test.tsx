import { act, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import type { Source } from "../api/types";
import { setToken } from "../api/client";
import { installEventSource, json, mockFetch, MockEventSource } from "../test/helpers";
import { SourcesPanel } from "./SourcesPanel";

const notes: Source = {
  source_id: "s1",
  filename: "notes.md",
  kind: "markdown",
  size_bytes: 2048,
  revision: 1,
  chunks: 3,
  pages: null,
  created_at: "2025-01-01T00:00:00Z",
  updated_at: "2025-01-01T00:00:00Z",
};

describe("SourcesPanel", () => {
  beforeEach(() => {
    installEventSource();
    setToken("t");
  });

  it("uploads a file as multipart, shows its progress, lists it and removes it", async () => {
    let listed: Source[] = [];
    const fetchMock = mockFetch((url, init) => {
      if (url === "/v1/courses/c1/sources" && (init.method ?? "GET") === "GET") {
        return json({ course_id: "c1", sources: listed });
      }
      if (url === "/v1/courses/c1/sources" && init.method === "POST") {
        return json(
          { course_id: "c1", job_id: "js", events_url: "/v1/jobs/js/events", source_id: "s1", filename: "notes.md", replaced: false },
          202,
        );
      }
      if (url === "/v1/courses/c1/sources/s1" && init.method === "DELETE") {
        listed = [];
        return new Response(null, { status: 204 });
      }
      return undefined;
    });
    render(<SourcesPanel courseId="c1" />);
    await screen.findByTestId("sources-panel");

    const file = new File(["# Notes\n\nThe loop runs one task at a time."], "notes.md", { type: "text/markdown" });
    await userEvent.upload(screen.getByTestId("source-file"), file);
    const post = fetchMock.mock.calls.find(([, init]) => (init as RequestInit)?.method === "POST");
    const sent = (post?.[1] as RequestInit).body as FormData;
    expect(sent).toBeInstanceOf(FormData);
    expect((sent.get("file") as File).name).toBe("notes.md");
    expect(((post?.[1] as RequestInit).headers as Record<string, string>)["Content-Type"]).toBeUndefined();

    await waitFor(() => expect(MockEventSource.instances).toHaveLength(1));
    const stream = MockEventSource.latest();
    act(() => stream.emit("source.progress", 1, { course_id: "c1", source_id: "s1", filename: "notes.md", stage: "embedding", done: 1, total: 3 }));
    expect(screen.getByTestId("source-progress")).toHaveTextContent("1 of 3 passages");

    listed = [notes];
    act(() => stream.emit("source.ingested", 2, { course_id: "c1", source_id: "s1", filename: "notes.md", chunks: 3 }));
    expect(stream.closed).toBe(true);
    const [item] = await screen.findAllByTestId("source");
    expect(item).toHaveTextContent("notes.md");
    expect(item).toHaveTextContent("markdown, 2 KB, 3 passages");
    expect(screen.queryByTestId("source-progress")).toBeNull();

    await userEvent.click(screen.getByTestId("delete-source-notes.md"));
    await waitFor(() => expect(screen.queryByTestId("source")).toBeNull());
  });

  it("says why a file could not be added", async () => {
    mockFetch((url, init) => {
      if (url === "/v1/courses/c1/sources" && (init.method ?? "GET") === "GET") return json({ course_id: "c1", sources: [] });
      if (url === "/v1/courses/c1/sources") {
        return json({ detail: "file: deck.pptx is not a supported format (Markdown .md, plain text .txt, HTML .html, PDF .pdf)" }, 415);
      }
      return undefined;
    });
    render(<SourcesPanel courseId="c1" />);
    await screen.findByTestId("sources-panel");
    await userEvent.upload(screen.getByTestId("source-file"), new File(["x"], "deck.pptx"), { applyAccept: false });
    expect(await screen.findByTestId("error")).toHaveTextContent("not a supported format");
  });
});
