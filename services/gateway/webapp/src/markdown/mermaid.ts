// Drawing ```mermaid blocks: mermaid is loaded only when a page has a diagram, runs
// with securityLevel "strict" (labels sanitised, no click handlers, no HTML), and its
// SVG is parsed inertly and scrubbed of anything executable before it is attached.

type MermaidApi = {
  initialize: (config: Record<string, unknown>) => void;
  render: (id: string, text: string) => Promise<{ svg: string }>;
};

let loading: Promise<MermaidApi> | null = null;

export const MERMAID_CONFIG = {
  startOnLoad: false,
  securityLevel: "strict",
  theme: "default",
  suppressErrorRendering: true,
  fontFamily: "inherit",
  // keys a diagram's own %%{init}%% directive may not change
  secure: [
    "secure",
    "securityLevel",
    "startOnLoad",
    "maxTextSize",
    "suppressErrorRendering",
    "maxEdges",
    "themeCSS",
    "fontFamily",
    "altFontFamily",
    "htmlLabels",
  ],
} as const;

function loadMermaid(): Promise<MermaidApi> {
  if (!loading) {
    loading = import("mermaid").then((mod) => {
      const mermaid = (mod.default ?? mod) as unknown as MermaidApi;
      mermaid.initialize({ ...MERMAID_CONFIG });
      return mermaid;
    });
    loading.catch(() => {
      loading = null; // let a later page try again (e.g. after a network blip)
    });
  }
  return loading;
}

const DROP_ELEMENTS = new Set([
  "script",
  "iframe",
  "object",
  "embed",
  "link",
  "meta",
  "base",
  "form",
  "input",
  "button",
  "textarea",
  "select",
  "audio",
  "video",
  "img",
  "image",
  "animate",
  "set",
  "animatemotion",
  "animatetransform",
]);
const URL_ATTRIBUTES = new Set(["href", "xlink:href", "src", "action", "formaction"]);

/** Remove scripts, event handlers and non-local links from a parsed SVG, in place. */
export function scrubSvg(root: Element | DocumentFragment): void {
  const elements = Array.from(root.querySelectorAll("*"));
  for (const el of elements) {
    if (DROP_ELEMENTS.has(el.localName.toLowerCase())) {
      el.remove();
      continue;
    }
    for (const attr of Array.from(el.attributes)) {
      const name = attr.name.toLowerCase();
      if (name.startsWith("on")) el.removeAttribute(attr.name);
      else if (URL_ATTRIBUTES.has(name) && !attr.value.trim().startsWith("#")) {
        el.removeAttribute(attr.name);
      } else if (name === "style" && UNSAFE_CSS.test(attr.value)) {
        el.removeAttribute(attr.name);
      }
    }
    if (el.localName.toLowerCase() === "style" && el.textContent) {
      // no remote loads from a stylesheet either (tracking, exfiltration)
      el.textContent = el.textContent
        .replace(/@import[^;]*;?/gi, "")
        .replace(/url\s*\(\s*(['"]?)(?!#)[^)]*\)/gi, "none");
    }
  }
}

// url(...) to anything but a local #fragment, old IE expressions, script URLs
const UNSAFE_CSS = /url\s*\(\s*['"]?(?!#)|expression\s*\(|javascript:/i;

/** An inert, scrubbed copy of mermaid's SVG output, ready to attach. */
export function svgElement(svg: string, doc: Document = document): SVGSVGElement | null {
  // template content is inert: nothing in it runs or loads while it is parsed
  const template = doc.createElement("template");
  template.innerHTML = svg;
  const fragment = template.content;
  scrubSvg(fragment);
  const found = fragment.querySelector("svg");
  return found ? (doc.importNode(found, true) as SVGSVGElement) : null;
}

let counter = 0;

/**
 * Draw every pending ```mermaid block under ``container``; a block that cannot be
 * drawn keeps its source and says so. Returns a cancel function.
 */
export function renderDiagrams(container: HTMLElement): () => void {
  const blocks = Array.from(container.querySelectorAll<HTMLElement>("pre.mermaid-source"));
  let cancelled = false;
  if (blocks.length === 0) return () => undefined;
  void (async () => {
    let mermaid: MermaidApi;
    try {
      mermaid = await loadMermaid();
    } catch {
      for (const block of blocks) markFailed(block, "Diagrams could not be loaded.");
      return;
    }
    for (const block of blocks) {
      if (cancelled || !block.isConnected) return;
      const source = block.textContent ?? "";
      const id = `mermaid-${Date.now().toString(36)}-${++counter}`;
      try {
        const { svg } = await mermaid.render(id, source);
        if (cancelled || !block.isConnected) return;
        const element = svgElement(svg);
        if (!element) throw new Error("no SVG");
        const figure = document.createElement("div");
        figure.className = "mermaid-diagram";
        figure.setAttribute("role", "img");
        figure.setAttribute("aria-label", "Diagram");
        figure.appendChild(element);
        block.replaceWith(figure);
      } catch {
        document.getElementById(id)?.remove();
        document.getElementById(`d${id}`)?.remove();
        if (!cancelled) markFailed(block, "This diagram could not be drawn; its source is shown.");
      }
    }
  })();
  return () => {
    cancelled = true;
  };
}

function markFailed(block: HTMLElement, message: string): void {
  if (block.classList.contains("mermaid-error")) return;
  block.classList.add("mermaid-error");
  const note = document.createElement("p");
  note.className = "mermaid-note";
  note.textContent = message;
  block.before(note);
}
