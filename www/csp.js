// The Content-Security-Policy the site is built for, in one place: vite.config.js writes it
// into every built page (<meta>) and into dist/_headers for hosts that read that file, and
// the browser tests (tests/js/static-server.mjs) send it as a header with every response.
// The site runs no inline script or style and evaluates nothing, so the policy only opens
// what the site needs, each for the reason given.
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  // Compiling WebAssembly is the one "eval" the site needs; no JS string is ever evaluated.
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self'",
  // The search page shows the visitor's own pictures through blob: object URLs.
  "img-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');
