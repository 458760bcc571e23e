import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ProgressBar } from "./ProgressBar";

describe("ProgressBar", () => {
  it("shows done / total as text and ARIA values", () => {
    render(<ProgressBar done={3} total={8} />);
    const bar = screen.getByTestId("progress");
    expect(bar).toHaveAttribute("role", "progressbar");
    expect(bar).toHaveAttribute("aria-valuenow", "3");
    expect(bar).toHaveAttribute("aria-valuemax", "8");
    expect(bar).toHaveTextContent("3 / 8");
    expect(bar.querySelector<HTMLElement>(".progress-fill")!.style.width).toBe("38%");
  });

  it("never shows more done than the total", () => {
    render(<ProgressBar done={9} total={8} />);
    expect(screen.getByTestId("progress")).toHaveAttribute("aria-valuenow", "8");
    expect(screen.getByTestId("progress")).toHaveTextContent("8 / 8");
  });
});
