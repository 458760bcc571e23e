import { useEffect, useMemo, useRef } from "react";
import { renderDiagrams } from "./mermaid";
import { renderMarkdown } from "./render";

interface Props {
  source: string;
  /** Draw ```mermaid blocks (off while text is still streaming in). */
  diagrams?: boolean;
  className?: string;
  "data-testid"?: string;
  "aria-live"?: "off" | "polite";
}

/** Untrusted markdown, rendered safely (see render.ts), with diagrams drawn after. */
export function Markdown({ source, diagrams = true, className, ...rest }: Props) {
  const html = useMemo(() => renderMarkdown(source), [source]);
  const ref = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!diagrams || !ref.current) return;
    return renderDiagrams(ref.current);
  }, [html, diagrams]);

  return (
    <div
      ref={ref}
      className={className ? `markdown ${className}` : "markdown"}
      data-testid={rest["data-testid"]}
      aria-live={rest["aria-live"]}
      // the only HTML injected anywhere: markdown-it output with html disabled
      dangerouslySetInnerHTML={{ __html: html }}
    />
  );
}
