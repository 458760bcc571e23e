import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { describe, expect, it } from "vitest";
import { App } from "./App";
import { getToken, setToken } from "./api/client";
import { AuthProvider } from "./auth/AuthContext";
import { json, mockFetch } from "./test/helpers";

function renderApp(path: string) {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <AuthProvider>
        <App />
      </AuthProvider>
    </MemoryRouter>,
  );
}

describe("App", () => {
  it("sends an unauthenticated visit to the start page, and a guest on to the course list", async () => {
    const fetchMock = mockFetch((url, init) => {
      if (url === "/v1/auth/guest" && init.method === "POST") {
        return json({ access_token: "guest-token", user_id: "u1", is_guest: true }, 201);
      }
      if (url === "/v1/auth/me") return json({ user_id: "u1", email: null, is_guest: true, role: "learner" });
      if (url === "/v1/courses") {
        return json([{ course_id: "c1", title: "Asyncio", topic: "asyncio", status: "ready", lessons_done: 3, lessons_total: 3, assessments_done: 3, created_at: "2025-01-01T00:00:00Z" }]);
      }
      return undefined;
    });
    renderApp("/courses");
    await userEvent.click(await screen.findByTestId("guest"));
    expect(await screen.findByTestId("course-list")).toBeInTheDocument();
    expect(screen.getAllByTestId("course-item")).toHaveLength(1);
    expect(screen.getByTestId("course-item")).toHaveTextContent("Asyncio");
    expect(getToken()).toBe("guest-token");
    const coursesCall = fetchMock.mock.calls.find(([u]) => u === "/v1/courses")!;
    expect((coursesCall[1] as RequestInit).headers).toMatchObject({ Authorization: "Bearer guest-token" });
    expect(screen.queryByTestId("admin-link")).toBeNull();
  });

  it("shows the Prompt admin link to admins only", async () => {
    setToken("admin-token");
    mockFetch((url) => {
      if (url === "/v1/auth/me") return json({ user_id: "u", email: "a@example.org", is_guest: false, role: "admin" });
      if (url === "/v1/courses") return json([]);
      return undefined;
    });
    renderApp("/courses");
    expect(await screen.findByTestId("admin-link")).toHaveAttribute("href", "/admin/prompts");
    expect(screen.getByTestId("who")).toHaveTextContent("a@example.org");
  });

  it("shows a wrong-password message from the server and stays on the login form", async () => {
    mockFetch((url) => (url === "/v1/auth/login" ? json({ detail: "Wrong email or password." }, 401) : undefined));
    renderApp("/login");
    await userEvent.type(screen.getByTestId("email"), "a@example.org");
    await userEvent.type(screen.getByTestId("password"), "not-it-at-all{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("Wrong email or password.");
    expect(getToken()).toBeNull();
  });

  it("signs out when the server no longer accepts the token", async () => {
    setToken("expired");
    mockFetch((url) =>
      url === "/v1/auth/me" || url === "/v1/courses" ? json({ detail: "token expired" }, 401) : undefined,
    );
    renderApp("/courses");
    expect(await screen.findByTestId("guest")).toBeInTheDocument();
    await waitFor(() => expect(getToken()).toBeNull());
    expect(screen.getByRole("status")).toHaveTextContent("Your session has ended");
  });
});
