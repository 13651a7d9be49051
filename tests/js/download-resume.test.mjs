// fetchChecked (pkg/encoder.js) against a real HTTP server whose responses break off midway:
// it resumes with a Range request where the server honours ranges, starts again where it does
// not, gives up with a clear error when the connection keeps breaking, and the sha256 check
// still covers the joined bytes. The site's page test (storage-faults.test.mjs) does the same
// in Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fetchChecked } from '../../pkg/encoder.js';
import { serveStatic } from './static-server.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const PATH = '/models/minilm-l6-v2/tokenizer.json';
const bytes = readFileSync(`${root}${PATH}`);
const sha256 = createHash('sha256').update(bytes).digest('hex');
const HALF = Math.floor(bytes.length / 2);

/** Serves the repository with `options`, runs fetchChecked on PATH, and returns what happened. */
async function load(options, extra = {}) {
  const server = await serveStatic(root, options);
  const progress = [];
  try {
    const result = await fetchChecked(`${server.url}${PATH}`, {
      sha256, cache: false, onProgress: (p) => progress.push(p.loaded), ...extra,
    }).catch((err) => err);
    return { result, progress, requests: server.requests.filter((r) => r.path === PATH) };
  } finally {
    await server.close();
  }
}

test('a download cut midway resumes with a Range request and keeps its progress', async () => {
  const { result, progress, requests } = await load({ cut: { [PATH]: HALF } });
  assert.ok(result instanceof Uint8Array, String(result));
  assert.ok(Buffer.from(result).equals(bytes));
  assert.deepEqual(requests.map((r) => r.range), [null, `bytes=${HALF}-`]);
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i] > progress[i - 1], `progress went back: ${progress}`);
  assert.equal(progress.at(-1), bytes.length);
});

test('a server that ignores Range sends the whole file again, and it is read from the start', async () => {
  const { result, progress, requests } = await load({ ranges: false, cut: { [PATH]: HALF } });
  assert.ok(result instanceof Uint8Array, String(result));
  assert.ok(Buffer.from(result).equals(bytes));
  assert.equal(requests.length, 2);
  assert.equal(progress.at(-1), bytes.length);
  assert.ok(progress.some((loaded, i) => i > 0 && loaded < progress[i - 1]), 'progress restarted from zero');
});

test('a connection that keeps breaking fails after four tries with a clear error', async () => {
  const { result, requests } = await load({ cut: { [PATH]: 1000 }, cutTimes: 10 });
  assert.ok(result instanceof Error);
  assert.match(result.message, /tokenizer\.json: the download broke off 4 times .*check the connection/);
  assert.deepEqual(requests.map((r) => r.range), [null, 'bytes=1000-', 'bytes=2000-', 'bytes=3000-']);
});

test('the sha256 check covers the resumed bytes', async () => {
  const { result } = await load({ cut: { [PATH]: HALF } }, { sha256: '0'.repeat(64) });
  assert.ok(result instanceof Error);
  assert.match(result.message, /sha256 is [0-9a-f]{64}, expected 0{64}/);
});
