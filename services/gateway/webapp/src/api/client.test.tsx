import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { ErrorBox } from "../components/ErrorBox";
import { json, mockFetch } from "../test/helpers";
import { api, ApiError, describeError, NETWORK_MESSAGE, setToken, toApiError } from "./client";

describe("API errors in words", () => {
  it("turns a pydantic 422 list into field + message", () => {
    const error = describeError(422, {
      detail: [
        { loc: ["body", "topic"], msg: "String should have at least 2 characters", type: "string_too_short" },
        { loc: ["body", "answers", 0, "choice"], msg: "Input should be less than or equal to 20", type: "x" },
        { loc: ["body", "email"], msg: "Value error, value is not a valid email address", type: "value_error" },
      ],
    });
    expect(error.status).toBe(422);
    expect(error.fields).toEqual([
      { field: "topic", message: "String should have at least 2 characters" },
      { field: "answers[0].choice", message: "Input should be less than or equal to 20" },
      { field: "email", message: "value is not a valid email address" },
    ]);
    expect(error.message).toBe(
      "topic: String should have at least 2 characters\n" +
        "answers[0].choice: Input should be less than or equal to 20\n" +
        "email: value is not a valid email address",
    );
    expect(error.retryable).toBe(false);
  });

  it("uses a {detail} string as the message", () => {
    const error = describeError(409, { detail: "that email is already registered" });
    expect(error.message).toBe("that email is already registered");
    expect(error.fields).toEqual([]);
  });

  it("says something readable when the body has no detail, and offers a retry for 503", () => {
    const error = describeError(503, null);
    expect(error.message).toMatch(/busy or restarting/);
    expect(error.retryable).toBe(true);
    expect(describeError(404, "<html>").message).toMatch(/not found/i);
  });

  it("sends the bearer token and JSON, and parses the answer", async () => {
    setToken("abc");
    const fetchMock = mockFetch(() => json({ ok: true }, 201));
    await expect(api("/v1/x", { body: { a: 1 } })).resolves.toEqual({ ok: true });
    const init = fetchMock.mock.calls[0][1] as RequestInit;
    expect(init.method).toBe("POST");
    expect((init.headers as Record<string, string>).Authorization).toBe("Bearer abc");
    expect(init.body).toBe('{"a":1}');
  });

  it("turns a failed response into an ApiError with the server's words", async () => {
    mockFetch(() => json({ detail: "wrong email or password" }, 401));
    const err = await api("/v1/auth/login", { body: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toBe("wrong email or password");
    expect((err as ApiError).status).toBe(401);
  });

  it("reports a network failure as retryable, in plain words", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    const err = toApiError(await api("/v1/courses").catch((e: unknown) => e));
    expect(err.status).toBe(0);
    expect(err.message).toBe(NETWORK_MESSAGE);
    expect(err.retryable).toBe(true);
  });

  it("shows fields and a Try again button only where retrying may help", async () => {
    const retry = vi.fn();
    const { rerender } = render(
      <ErrorBox error={describeError(422, { detail: [{ loc: ["body", "duration_hours"], msg: "Input should be greater than 0" }] })} onRetry={retry} />,
    );
    expect(screen.getByRole("alert")).toHaveTextContent("duration_hours: Input should be greater than 0");
    expect(screen.queryByRole("button", { name: "Try again" })).toBeNull();

    rerender(<ErrorBox error={new ApiError(0, NETWORK_MESSAGE)} onRetry={retry} />);
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(retry).toHaveBeenCalledOnce();
  });
});
