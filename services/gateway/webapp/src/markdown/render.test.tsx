import { render, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { Markdown } from "./Markdown";
import { renderMarkdown } from "./render";

const mermaidMock = vi.hoisted(() => ({
  initialize: vi.fn(),
  render: vi.fn(async (_id: string, _text: string) => ({
    svg:
      '<svg xmlns="http://www.w3.org/2000/svg" onload="window.__pwned=1"><script>window.__pwned=2</script>' +
      '<a href="javascript:alert(1)"><text>A</text></a><g class="node"><rect width="10" height="10"/></g></svg>',
  })),
}));
vi.mock("mermaid", () => ({ default: mermaidMock }));

const HOSTILE = [
  "# Lesson",
  "",
  "<script>window.__pwned = 3</script>",
  "",
  '<img src="x" onerror="window.__pwned = 4">',
  "",
  "[click me](javascript:alert(1)) and <a href=\"https://x\" onclick=\"alert(1)\">raw link</a>",
  "",
  "![pic](javascript:alert(2))",
].join("\n");

describe("markdown rendering", () => {
  it("never produces live script, event handlers or javascript: links", () => {
    const { container } = render(<Markdown source={HOSTILE} />);
    expect(container.querySelector("script")).toBeNull();
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("[onerror],[onclick],[onload]")).toBeNull();
    for (const a of container.querySelectorAll("a")) {
      expect(a.getAttribute("href") ?? "").not.toMatch(/^javascript:/i);
    }
    // the raw HTML is shown as text instead
    expect(container.textContent).toContain("<script>window.__pwned = 3</script>");
    expect(container.textContent).toContain('<img src="x" onerror="window.__pwned = 4">');
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
    expect(container.querySelector("h1")?.textContent).toBe("Lesson");
  });

  it("drops dangerous link schemes however they are disguised", () => {
    const disguised = [
      "[a](JaVaScRiPt:alert(1))",
      "[b](&#106;avascript:alert(2))",
      "[c](&#x6A;avascript&#58;alert(3))",
      "[d](vbscript:msgbox(4))",
      "[e](data:text/html;base64,PHNjcmlwdD4=)",
      "[f](file:///etc/passwd)",
      "[g](<javascript:alert(5)>)",
      "<javascript:alert(6)>",
      "![h](javascript:alert(7))",
      "![i](data:image/svg+xml;base64,PHN2Zz4=)",
      "[ok](https://example.org/)",
    ].join("\n\n");
    const div = document.createElement("div");
    div.innerHTML = renderMarkdown(disguised);
    const urls = Array.from(div.querySelectorAll("[href],[src]")).map(
      (el) => el.getAttribute("href") ?? el.getAttribute("src") ?? "",
    );
    expect(urls).toEqual(["https://example.org/"]);
    for (const el of div.querySelectorAll("*")) {
      for (const attr of Array.from(el.attributes)) expect(attr.name).not.toMatch(/^on/i);
    }
  });

  it("highlights fenced code by language, escaping it", () => {
    const html = renderMarkdown("```python\ndef greet(name):\n    return f\"<b>{name}</b>\"\n```");
    const div = document.createElement("div");
    div.innerHTML = html;
    const code = div.querySelector("pre code.hljs.language-python");
    expect(code).not.toBeNull();
    expect(code!.querySelector(".hljs-keyword")?.textContent).toBe("def");
    expect(code!.querySelector("b")).toBeNull();
    expect(code!.textContent).toContain('return f"<b>{name}</b>"');
  });

  it("shows code in an unknown language as escaped plain text", () => {
    const div = document.createElement("div");
    div.innerHTML = renderMarkdown("```klingon\n<script>x</script>\n```");
    expect(div.querySelector("script")).toBeNull();
    expect(div.querySelector("pre code")?.textContent).toBe("<script>x</script>\n");
  });

  it("links open in a new tab without a handle on the app", () => {
    const div = document.createElement("div");
    div.innerHTML = renderMarkdown("See https://example.org for more.");
    const a = div.querySelector("a")!;
    expect(a.getAttribute("href")).toBe("https://example.org");
    expect(a.getAttribute("target")).toBe("_blank");
    expect(a.getAttribute("rel")).toContain("noopener");
  });

  it("draws mermaid fences as SVG with securityLevel strict, scrubbed of scripts", async () => {
    const source = "Before\n\n```mermaid\ngraph TD\n  A[\"<img src=x onerror=alert(1)>\"] --> B\n```\n\nAfter";
    const { container } = render(<Markdown source={source} />);
    // before drawing, the source is escaped text in a placeholder
    await waitFor(() => expect(container.querySelector(".mermaid-diagram svg")).not.toBeNull());
    expect(mermaidMock.initialize).toHaveBeenCalledWith(expect.objectContaining({ securityLevel: "strict", startOnLoad: false }));
    expect(mermaidMock.render).toHaveBeenCalledWith(expect.any(String), 'graph TD\n  A["<img src=x onerror=alert(1)>"] --> B\n');
    const diagram = container.querySelector(".mermaid-diagram")!;
    expect(diagram.querySelector("script")).toBeNull();
    expect(diagram.querySelector("[onload]")).toBeNull();
    expect(diagram.querySelector("a")?.getAttribute("href")).toBeNull();
    expect(diagram.querySelector("g.node rect")).not.toBeNull();
    expect(container.querySelector("pre.mermaid-source")).toBeNull();
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
  });

  it("keeps the source when a diagram cannot be drawn", async () => {
    mermaidMock.render.mockRejectedValueOnce(new Error("Parse error on line 1"));
    const { container } = render(<Markdown source={"```mermaid\nnot a diagram\n```"} />);
    await waitFor(() => expect(container.querySelector(".mermaid-note")).not.toBeNull());
    expect(container.querySelector("pre.mermaid-source.mermaid-error")?.textContent).toBe("not a diagram\n");
  });

  it("does not draw diagrams while text is still streaming", () => {
    mermaidMock.render.mockClear();
    const { container } = render(<Markdown source={"```mermaid\ngraph TD; A-->B\n```"} diagrams={false} />);
    expect(container.querySelector("pre.mermaid-source")).not.toBeNull();
    expect(mermaidMock.render).not.toHaveBeenCalled();
  });
});
