import { act, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { beforeEach, describe, expect, it } from "vitest";
import type { Lesson } from "../api/types";
import { setToken } from "../api/client";
import { bodyOf, installEventSource, json, mockFetch, MockEventSource } from "../test/helpers";
import { LessonPage, withoutTitle } from "./LessonPage";

const v1: Lesson = {
  lesson_id: "l1",
  order: 1,
  version: 1,
  title: "Coroutines",
  markdown: "# Coroutines\n\n```python\nasync def main():\n    await x\n```",
  versions: [{ version: 1, created_at: "2025-01-01T00:00:00Z", feedback: null }],
};
const v2: Lesson = {
  ...v1,
  version: 2,
  markdown: "# Coroutines, with cooking",
  versions: [...v1.versions, { version: 2, created_at: "2025-01-02T00:00:00Z", feedback: "Use a cooking analogy" }],
};

describe("LessonPage", () => {
  beforeEach(() => {
    installEventSource();
    setToken("t");
  });

  it("rates the lesson and streams a revision, then shows the new version", async () => {
    let latest = v1;
    const fetchMock = mockFetch((url) => {
      if (url === "/v1/courses/c1/lessons/1") return json(latest);
      if (url === "/v1/courses/c1/lessons/1?version=1") return json({ ...v1, versions: v2.versions });
      if (url === "/v1/courses/c1") return json({ course_id: "c1", title: "Asyncio", modules: [{}, {}], jobs: [], chat: [] });
      if (url === "/v1/feedback") return json({ ok: true }, 201);
      if (url === "/v1/courses/c1/lessons/1/revise") return json({ job_id: "jr", events_url: "/v1/jobs/jr/events" }, 202);
      return undefined;
    });
    render(
      <MemoryRouter initialEntries={["/courses/c1/lessons/1"]}>
        <Routes>
          <Route path="/courses/:id/lessons/:n" element={<LessonPage />} />
        </Routes>
      </MemoryRouter>,
    );
    const lesson = await screen.findByTestId("lesson");
    await waitFor(() => expect(lesson.querySelector("code.language-python .hljs-keyword")).not.toBeNull());
    expect(screen.getByText("Lesson 1 of 2")).toBeInTheDocument();

    await userEvent.click(screen.getByTestId("rating-4"));
    await userEvent.type(screen.getByTestId("rating-comment"), "Clear");
    await userEvent.click(screen.getByTestId("submit-rating"));
    expect(await screen.findByTestId("rating-thanks")).toBeInTheDocument();
    expect(bodyOf(fetchMock, fetchMock.mock.calls.findIndex(([u]) => u === "/v1/feedback"))).toEqual({ lesson_id: "l1", rating: 4, comment: "Clear" });

    await userEvent.type(screen.getByTestId("revision-feedback"), "Use a cooking analogy");
    await userEvent.click(screen.getByTestId("request-revision"));
    await waitFor(() => expect(MockEventSource.instances).toHaveLength(1));
    const source = MockEventSource.latest();
    act(() => source.emit("job.chunk", 1, { step: "revise:1", text: "# Coroutines, with coo", attempt: 1, index: 0 }));
    expect(screen.getByTestId("revision-stream")).toHaveTextContent("Coroutines, with coo");

    latest = v2;
    act(() => source.emit("lesson.revised", 2, { course_id: "c1", module_id: "m", lesson_id: "l1", order: 1, title: "Coroutines", version: 2, markdown: v2.markdown }));
    expect(source.closed).toBe(true);
    expect(await screen.findByTestId("revision-status")).toHaveTextContent("version 2");
    await waitFor(() => expect(screen.getByTestId("lesson-body")).toHaveTextContent("Coroutines, with cooking"));
    expect(screen.getByTestId("version-picker")).toHaveValue("2");

    await userEvent.selectOptions(screen.getByTestId("version-picker"), "1");
    await waitFor(() => expect(screen.getByTestId("lesson-body")).toHaveTextContent("async def main"));
    expect(screen.getByText(/older version/)).toBeInTheDocument();
  });
});

describe("LessonPage citations", () => {
  beforeEach(() => {
    installEventSource();
    setToken("t");
  });

  it("lists the passages of the course's sources the lesson cites", async () => {
    const cited: Lesson = {
      ...v1,
      markdown: "# Coroutines\n\nThe loop runs one task at a time [S1].",
      citations: [
        {
          marker: "S1",
          source_id: "s1",
          filename: "guide.pdf",
          page: 3,
          section: "Guide > The event loop",
          chunk_id: "c1",
          quote: "The event loop runs one task at a time.",
        },
      ],
    };
    mockFetch((url) => {
      if (url === "/v1/courses/c1/lessons/1") return json(cited);
      if (url === "/v1/courses/c1") return json({ course_id: "c1", title: "Asyncio", modules: [{}], jobs: [], chat: [] });
      return undefined;
    });
    render(
      <MemoryRouter initialEntries={["/courses/c1/lessons/1"]}>
        <Routes>
          <Route path="/courses/:id/lessons/:n" element={<LessonPage />} />
        </Routes>
      </MemoryRouter>,
    );
    const [citation] = await screen.findAllByTestId("citation");
    expect(citation).toHaveTextContent("[S1] guide.pdf, p. 3 — Guide > The event loop");
    expect(citation).toHaveTextContent("The event loop runs one task at a time.");
    expect(screen.getByTestId("lesson-body")).toHaveTextContent("one task at a time [S1]");
  });

  it("shows no sources panel for a lesson without citations", async () => {
    mockFetch((url) => {
      if (url === "/v1/courses/c1/lessons/1") return json(v1);
      if (url === "/v1/courses/c1") return json({ course_id: "c1", title: "Asyncio", modules: [{}], jobs: [], chat: [] });
      return undefined;
    });
    render(
      <MemoryRouter initialEntries={["/courses/c1/lessons/1"]}>
        <Routes>
          <Route path="/courses/:id/lessons/:n" element={<LessonPage />} />
        </Routes>
      </MemoryRouter>,
    );
    await screen.findByTestId("lesson-body");
    expect(screen.queryByTestId("lesson-sources")).toBeNull();
  });
});

describe("withoutTitle", () => {
  it("drops a leading heading that repeats the title, and only that", () => {
    expect(withoutTitle("# Coroutines\n\nBody", "Coroutines")).toBe("\nBody");
    expect(withoutTitle("# Other\n\nBody", "Coroutines")).toBe("# Other\n\nBody");
    expect(withoutTitle("Intro\n# Coroutines", "Coroutines")).toBe("Intro\n# Coroutines");
  });
});
