import react from "@vitejs/plugin-react";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

// Defence in depth for generated content: the built page runs only script files from its
// own origin (no inline <script>, no on*= handler attributes, whatever markup gets in) and
// talks only to its own origin; nothing evaluates strings. Styles may be inline: mermaid
// draws diagrams with style attributes. Dev mode (React refresh's inline preamble) is left
// alone. The gateway sends the same policy as a header (services/gateway/spa.py).
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join("; ");

function contentSecurityPolicy(): Plugin {
  return {
    name: "lectern-csp",
    apply: "build",
    transformIndexHtml: (html) =>
      html.replace(
        /(<meta charset="UTF-8" \/>)/,
        `$1\n    <meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}" />`,
      ),
  };
}

// The gateway serves dist/ at "/" (SPA fallback) and the API at /v1 on the same origin.
export default defineConfig({
  base: "/",
  plugins: [react(), contentSecurityPolicy()],
  server: {
    // `npm run dev`: the API (and its SSE streams) from a gateway on :8000
    proxy: { "/v1": { target: "http://localhost:8000", changeOrigin: false } },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // mermaid is loaded on demand (only for lessons with diagrams); its chunks are big
    chunkSizeWarningLimit: 1600,
  },
  test: {
    environment: "jsdom",
    setupFiles: ["./src/test/setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    restoreMocks: true,
  },
});
