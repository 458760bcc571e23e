import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { bodyOf, json, mockFetch } from "../test/helpers";
import { CourseForm } from "./CourseForm";

describe("CourseForm", () => {
  it("refuses a missing topic and a bad duration without calling the API", async () => {
    const fetchMock = mockFetch(() => json({}, 202));
    const onCreated = vi.fn();
    render(<CourseForm onCreated={onCreated} />);
    const duration = screen.getByTestId("duration");
    await userEvent.clear(duration);
    await userEvent.type(duration, "600");
    await userEvent.click(screen.getByTestId("create-course"));

    expect(screen.getByText(/Say what you want to learn/)).toBeInTheDocument();
    expect(screen.getByText(/at most 500 hours/)).toBeInTheDocument();
    expect(screen.getByTestId("topic")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByTestId("topic")).toHaveFocus();
    expect(fetchMock).not.toHaveBeenCalled();
    expect(onCreated).not.toHaveBeenCalled();

    await userEvent.clear(duration);
    await userEvent.type(duration, "0");
    await userEvent.click(screen.getByTestId("create-course"));
    expect(screen.getByText(/more than 0 hours/)).toBeInTheDocument();
  });

  it("sends the profile as the API expects and hands over the job (Enter submits)", async () => {
    const accepted = { course_id: "c1", job_id: "j1", events_url: "/v1/jobs/j1/events" };
    const fetchMock = mockFetch((url, init) => (url === "/v1/courses" && init.method === "POST" ? json(accepted, 202) : undefined));
    const onCreated = vi.fn();
    render(<CourseForm onCreated={onCreated} />);

    await userEvent.type(screen.getByTestId("topic"), "  Python asyncio ");
    await userEvent.selectOptions(screen.getByTestId("level"), "intermediate");
    const duration = screen.getByTestId("duration");
    await userEvent.clear(duration);
    await userEvent.type(duration, "12.5");
    await userEvent.type(screen.getByTestId("expectations"), "Write a scraper");
    await userEvent.selectOptions(screen.getByTestId("style"), "practice");
    await userEvent.selectOptions(screen.getByTestId("pace"), "intensive");
    await userEvent.selectOptions(screen.getByTestId("goal-context"), "corporate");
    const language = screen.getByTestId("language");
    await userEvent.clear(language);
    await userEvent.type(language, "pt-BR{Enter}");

    expect(fetchMock).toHaveBeenCalledOnce();
    expect(bodyOf(fetchMock, 0)).toEqual({
      topic: "Python asyncio",
      level: "intermediate",
      duration_hours: 12.5,
      expectations: "Write a scraper",
      style: "practice",
      pace: "intensive",
      goal_context: "corporate",
      language: "pt-BR",
      auto_finalize: false,
    });
    expect(onCreated).toHaveBeenCalledWith(accepted);
  });

  it("shows the server's field errors", async () => {
    mockFetch(() => json({ detail: [{ loc: ["body", "language"], msg: "String should match pattern", type: "x" }] }, 422));
    render(<CourseForm onCreated={vi.fn()} />);
    await userEvent.type(screen.getByTestId("topic"), "Rust");
    await userEvent.click(screen.getByTestId("create-course"));
    expect(await screen.findByRole("alert")).toHaveTextContent("language: String should match pattern");
  });
});
