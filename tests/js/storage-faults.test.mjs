// The image search page in headless Chromium when downloads and storage fail: a model
// download that breaks off midway resumes with a Range request; a truncated model in the
// Cache API is dropped and downloaded again; a damaged saved index in IndexedDB is recomputed
// (same results as before the damage); and with the origin's storage quota exhausted (a real
// QuotaExceededError from both the Cache API and IndexedDB, set through the DevTools
// protocol) the page still works, it just remembers nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { serveStatic } from './static-server.mjs';
import { DIST, launch, recordErrors } from './browser.mjs';

const dist = DIST;
const READY = 'body[data-ready="true"]';
const TIMEOUT = 300_000;
const TEXT_MODEL = '/models/minilm-l6-v2/model.onnx';
const CUT = 20_000_000; // of 45 MB
const CACHE = 'latentlab-models-v1'; // pkg/encoder.js

let browser;
before(async () => {
  assert.ok(existsSync(`${dist}/search.html`), 'www/dist is built (scripts/build)');
  assert.ok(existsSync(`${dist}${TEXT_MODEL}`), 'the models are copied into the site (scripts/build)');
  browser = await launch();
});
after(() => browser?.close());

/** Opens the search page in `context` and waits until the gallery is indexed. */
async function openSearch(context, url) {
  const page = await context.newPage();
  const errors = recordErrors(page);
  await page.goto(`${url}/search.html`);
  await page.waitForSelector(READY, { timeout: TIMEOUT });
  return { page, errors };
}

/** Waits for the page to be indexed again after a reload; returns "Last indexing: …". */
async function reloadIndexed(page) {
  await page.reload();
  await page.waitForSelector(READY, { timeout: TIMEOUT });
  await page.waitForSelector('#gallery-count[title]', { timeout: TIMEOUT });
  assert.equal(await page.getByTestId('error').isHidden(), true, await page.getByTestId('error').textContent());
  return page.$eval('#gallery-count', (el) => el.title);
}

/** The ranked [{name, score}] for a text query. */
async function search(page, text) {
  await page.getByTestId('query-input').fill(text);
  await page.$eval('[data-testid="results"]', (ol) => ol.replaceChildren());
  await page.getByTestId('search-button').click();
  await page.waitForSelector('[data-testid="result"]', { timeout: 120_000 });
  return page.$$eval('[data-testid="result"]', (lis) =>
    lis.map((li) => ({ name: li.dataset.name, score: Number(li.dataset.score) })));
}

const modelRequests = (server) => server.requests.filter((r) => r.path === TEXT_MODEL);

// One visitor across the first three tests: a server, a browser profile and the page.
const visitor = {};

test('a model download broken off midway resumes with a Range request', { timeout: TIMEOUT }, async () => {
  visitor.server = await serveStatic(dist, { cut: { [TEXT_MODEL]: CUT } });
  visitor.context = await browser.newContext();
  // Every value the text model's progress bar shows, from the first.
  await visitor.context.addInitScript((model) => {
    window.modelProgress = [];
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.target.localName === 'progress' && r.target.closest('[data-url]')?.dataset.url.endsWith(model)) {
          window.modelProgress.push(Number(r.target.value));
        }
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['value'] });
  }, TEXT_MODEL);
  const { page, errors } = await openSearch(visitor.context, visitor.server.url);
  visitor.page = page;
  visitor.errors = errors;

  const requests = modelRequests(visitor.server);
  assert.equal(requests.length, 2, JSON.stringify(requests));
  assert.equal(requests[0].range, null);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(requests[1].range ?? '')?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= CUT, `resumed at ${requests[1].range}`);
  const progress = await page.evaluate(() => window.modelProgress);
  assert.ok(progress.some((v) => v > resumedAt), 'progress went on after the break');
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i] >= progress[i - 1], `progress went back: ${progress}`);
  assert.equal(progress.at(-1), statSync(`${dist}${TEXT_MODEL}`).size);

  visitor.hits = await search(page, 'a cat');
  assert.equal(visitor.hits[0].name, 'chelsea.png');
  assert.deepEqual(errors, []);
});

test('a truncated model in the Cache API is dropped and downloaded again', { timeout: TIMEOUT }, async () => {
  const { page, errors, server } = visitor;
  const url = `${server.url}${TEXT_MODEL}`;
  const cachedLength = () => page.evaluate(async ([name, url]) => {
    const hit = await (await caches.open(name)).match(url);
    return hit ? (await hit.arrayBuffer()).byteLength : 0;
  }, [CACHE, url]);
  const full = await cachedLength();
  assert.equal(full, statSync(`${dist}${TEXT_MODEL}`).size, 'the resumed download was cached whole');
  await page.evaluate(async ([name, url]) => {
    const cache = await caches.open(name);
    const bytes = new Uint8Array(await (await cache.match(url)).arrayBuffer());
    await cache.put(url, new Response(bytes.slice(0, 1000)));
  }, [CACHE, url]);
  const before = modelRequests(server).length;

  await reloadIndexed(page);
  assert.deepEqual(modelRequests(server).slice(before).map((r) => r.range), [null], 'downloaded again, whole');
  assert.equal(await cachedLength(), full);
  assert.deepEqual(await search(page, 'a cat'), visitor.hits);
  assert.deepEqual(errors, []);
});

test('a damaged saved index in IndexedDB is recomputed, with the same results', { timeout: TIMEOUT }, async () => {
  const { page, errors } = visitor;
  assert.match(await reloadIndexed(page), /^Last indexing: 12 reused/, 'the embeddings were saved');
  // The page keeps one saved index per model (the package's saveIndex, named "search:<model>").
  // Three kinds of damage, each on its own visit: one byte flipped, the bytes cut in half, and a
  // record that holds no bytes at all. Each time the package refuses the record, the page embeds
  // everything again and saves it whole.
  const damage = (kind) => page.evaluate((how) => new Promise((resolve, reject) => {
    const open = indexedDB.open('latentlab-indexes');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction('indexes', 'readwrite');
      const store = tx.objectStore('indexes');
      const names = [];
      store.getAll().onsuccess = (event) => {
        for (const record of event.target.result.filter((r) => r.name.startsWith('search:'))) {
          names.push(record.name);
          const bytes = record.bytes.slice();
          if (how === 'flip') bytes[bytes.length >> 1] ^= 0x10;
          store.put({ ...record, bytes: how === 'cut' ? bytes.slice(0, bytes.length >> 1) : how === 'flip' ? bytes : 'garbage' });
        }
      };
      tx.oncomplete = () => { db.close(); resolve(names); };
      tx.onerror = () => reject(tx.error);
    };
  }), kind);
  // User-image records that are not images must not stop the page either.
  await page.evaluate(() => new Promise((resolve, reject) => {
    const open = indexedDB.open('latentlab-search');
    open.onsuccess = () => {
      const tx = open.result.transaction('images', 'readwrite');
      tx.objectStore('images').put({ name: 'junk.png', blob: 'not a blob', added: 'yesterday' });
      tx.objectStore('images').put({ name: 42 });
      tx.oncomplete = () => { open.result.close(); resolve(); };
      tx.onerror = () => reject(tx.error);
    };
  }));
  for (const kind of ['flip', 'cut', 'not bytes']) {
    const names = await damage(kind);
    assert.equal(names.length, 1, `one saved index for the model, damaged (${kind}): ${names}`);
    assert.match(await reloadIndexed(page), /^Last indexing: 12 embedded in/, `after damage: ${kind}`);
    assert.equal(await page.locator('[data-testid="gallery-item"]').count(), 12, 'the junk records are not shown');
    assert.deepEqual(await search(page, 'a cat'), visitor.hits);
  }
  // The recomputed embeddings were saved again.
  assert.match(await reloadIndexed(page), /^Last indexing: 12 reused/);
  assert.deepEqual(errors, []);
  await visitor.context.close();
  await visitor.server.close();
});

test('with the storage quota exhausted the page works and remembers nothing', { timeout: TIMEOUT }, async () => {
  const server = await serveStatic(dist);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors = recordErrors(page);
    // 50 kB: the Cache API refuses the models and IndexedDB aborts every write with
    // QuotaExceededError, while opening both still works.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.url, quotaSize: 50_000 });
    await page.goto(`${server.url}/search.html`);
    await page.waitForSelector(READY, { timeout: TIMEOUT });
    assert.equal((await search(page, 'a cat'))[0].name, 'chelsea.png');
    const coins = readFileSync(`${dist}/gallery/coins.png`);
    await page.getByTestId('add-images').setInputFiles({ name: 'my-coins.png', mimeType: 'image/png', buffer: coins });
    await page.waitForSelector('[data-testid="gallery-item"][data-name="my-coins.png"]:not(.pending)', { timeout: 120_000 });
    assert.equal(await page.getByTestId('error').isHidden(), true);

    const stored = () => page.evaluate(async (name) => {
      const models = (await (await caches.open(name)).keys()).length;
      const opened = (name) => new Promise((resolve) => {
        const open = indexedDB.open(name);
        open.onsuccess = () => resolve(open.result);
      });
      const count = (db, storeName) => new Promise((resolve) => {
        if (!db.objectStoreNames.contains(storeName)) { resolve(0); return; }
        const request = db.transaction(storeName).objectStore(storeName).count();
        request.onsuccess = () => resolve(request.result);
      });
      return {
        models,
        indexes: await count(await opened('latentlab-indexes'), 'indexes'),
        images: await count(await opened('latentlab-search'), 'images'),
      };
    }, CACHE);
    assert.deepEqual(await stored(), { models: 0, indexes: 0, images: 0 }, 'the quota refused every write');

    // A reload downloads and embeds everything again, and the added picture is gone.
    const before = modelRequests(server).length;
    await page.reload();
    await page.waitForSelector(READY, { timeout: TIMEOUT });
    assert.equal(modelRequests(server).length, before + 1);
    assert.equal(await page.locator('[data-testid="gallery-item"]').count(), 12);
    assert.equal((await search(page, 'a cat'))[0].name, 'chelsea.png');
    assert.equal(await page.getByTestId('error').isHidden(), true);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await server.close();
  }
});
