// Markdown written by a model is untrusted: markdown-it with `html: false` escapes any
// raw HTML (so no <script>, no <img onerror>), and its link validator drops
// javascript:/vbscript:/data: URLs. Code is highlighted by highlight.js, whose output
// is escaped text in <span class="hljs-…"> elements. ```mermaid fences become a
// placeholder holding the escaped source; Markdown.tsx draws them after rendering.

import hljs from "./highlight";
import MarkdownIt from "markdown-it";

const md: MarkdownIt = new MarkdownIt({
  html: false,
  linkify: true,
  typographer: false,
  breaks: false,
  highlight(code: string, lang: string): string {
    const language = lang.trim().toLowerCase();
    if (language && hljs.getLanguage(language)) {
      try {
        const out = hljs.highlight(code, { language, ignoreIllegals: true }).value;
        const cls = md.utils.escapeHtml(language);
        return `<pre class="code-block"><code class="hljs language-${cls}">${out}</code></pre>`;
      } catch {
        // fall through to plain, escaped text
      }
    }
    return ""; // markdown-it escapes it
  },
});

const defaultFence = md.renderer.rules.fence!;
md.renderer.rules.fence = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  const lang = token.info.trim().split(/\s+/)[0]?.toLowerCase();
  if (lang === "mermaid") {
    // drawn client-side (securityLevel "strict"); the escaped source stays as a fallback
    return `<pre class="mermaid-source"><code>${md.utils.escapeHtml(token.content)}</code></pre>\n`;
  }
  return defaultFence(tokens, idx, options, env, self);
};

// links leave the app in a new tab, without giving the new page a handle on this one
const defaultLinkOpen =
  md.renderer.rules.link_open ??
  ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  const href = token.attrGet("href") ?? "";
  if (/^https?:\/\//i.test(href)) {
    token.attrSet("target", "_blank");
    token.attrSet("rel", "noopener noreferrer nofollow");
  }
  return defaultLinkOpen(tokens, idx, options, env, self);
};

/** Markdown to HTML that is safe to put in the page (no raw HTML passes through). */
export function renderMarkdown(source: string): string {
  return md.render(source ?? "");
}
