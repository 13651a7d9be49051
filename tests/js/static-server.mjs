// A minimal static file server for the built site, on 127.0.0.1 and a free port.
// Serves only files under `root`; anything else is a 404.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { CONTENT_SECURITY_POLICY } from '../../www/csp.js';

export { CONTENT_SECURITY_POLICY };

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.onnx': 'application/octet-stream',
  '.md': 'text/markdown; charset=utf-8',
};

/**
 * Options:
 * - `csp`: the Content-Security-Policy header of every response; the site's own by default,
 *   so every browser test runs under the policy a deployment should send. `null` for none.
 * - `ranges`: answer `Range: bytes=a-[b]` with 206 as static hosts do (default); `false`
 *   ignores Range and sends the whole file, as some servers do.
 * - `cut`: {path: bytes}; a response for that path sends that many bytes of its body and
 *   closes the connection, a download broken off midway; `cutTimes` (default 1) responses
 *   per path are cut, the later ones are whole.
 * - `alter(path, bytes)`: what to send instead of each file's bytes (a file damaged or
 *   swapped on the host); the file as it is by default.
 * `requests` lists every request as {path, range} (range: the Range header or null).
 */
export async function serveStatic(root, { csp = CONTENT_SECURITY_POLICY, ranges = true, cut = {}, cutTimes = 1, alter = (_, bytes) => bytes } = {}) {
  const base = resolve(root);
  const requests = [];
  const cutsLeft = new Map(Object.keys(cut).map((path) => [path, cutTimes]));
  const server = createServer(async (req, res) => {
    const security = csp ? { 'content-security-policy': csp } : {};
    try {
      const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
      requests.push({ path, range: req.headers.range ?? null });
      let file = normalize(join(base, path));
      if (file !== base && !file.startsWith(base + sep)) throw new Error('outside root');
      if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
      const body = alter(path, await readFile(file));
      const headers = { ...security, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' };
      if (ranges) headers['accept-ranges'] = 'bytes';
      let status = 200;
      let part = body;
      const range = ranges && /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        const end = Math.min(range[2] === '' ? Infinity : Number(range[2]), body.length - 1);
        if (start > end) {
          res.writeHead(416, { ...headers, 'content-range': `bytes */${body.length}` });
          res.end();
          return;
        }
        status = 206;
        headers['content-range'] = `bytes ${start}-${end}/${body.length}`;
        part = body.subarray(start, end + 1);
      }
      res.writeHead(status, { ...headers, 'content-length': part.length });
      if (cutsLeft.get(path) > 0) {
        cutsLeft.set(path, cutsLeft.get(path) - 1);
        res.write(part.subarray(0, cut[path]), () => res.destroy());
        return;
      }
      res.end(part);
    } catch {
      res.writeHead(404, { ...security, 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((ok) => {
      server.close(ok);
      server.closeAllConnections?.();
    }),
  };
}
