// Every data file the site fetches is checked against the sha256 the build put into its bundle
// (www/integrity-plugin.js, www/src/fetch-data.js). The table must match the built files; and
// a file changed by one byte on the host, whether the page or its worker fetches it, is
// refused with a message naming it, never shown as a blank page or used as it came.
// (That every data request of every page is in the table is checked in csp.test.mjs, which
// opens them all.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { builtIntegrityTable, recordErrors, servedSite } from './browser.mjs';
import { serveStatic } from './static-server.mjs';

const site = servedSite([
  ['index.html', 'www/dist is built (scripts/build)'],
  ['models/manifest.json', 'the models are copied into the site (scripts/build)'],
]);

test('the table holds every data file of the built site, with its sha256', async () => {
  const table = await builtIntegrityTable();
  const data = readdirSync(site.dist, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => `${e.parentPath}/${e.name}`.slice(site.dist.length + 1))
    .filter((path) => !/\.(html|m?js|css|wasm)$|^_headers$/.test(path))
    .sort();
  assert.deepEqual(Object.keys(table).sort(), data);
  for (const path of data) {
    assert.equal(table[path], createHash('sha256').update(readFileSync(`${site.dist}/${path}`)).digest('hex'), path);
  }
});

/** A server alteration: one byte of each file whose path `matches` flipped. */
const flipByte = (matches) => (path, bytes) => {
  if (!matches(path)) return bytes;
  const altered = Buffer.from(bytes);
  altered[altered.length >> 1] ^= 0x20;
  return altered;
};

const CASES = [
  {
    page: 'plans.html', file: 'examples/asynchow-examples.json', by: 'the page', settled: 'body[data-ready="true"]',
    // Only the built-in example is offered, none of the altered file's.
    unused: async (page) => assert.equal(await page.$$eval('#example-select option', (o) => o.length), 1),
  },
  {
    page: 'xrm.html', file: 'xrm/train_x.npy', by: 'the page',
    unused: async (page) => assert.equal(await page.$('body[data-loaded]'), null),
  },
  {
    page: 'search.html', file: 'gallery/coffee.png', by: 'the page',
    unused: async (page) => assert.equal(await page.$('[data-testid="gallery-item"][data-name="coffee.png"]'), null),
  },
  {
    page: 'tiny.html', file: /stamps\/[^/]+\.png/, label: 'stamp picture (all of them)', by: 'the page, as pictures',
    settled: 'body[data-anchors="true"]',
    // The anchors are listed, without pictures.
    unused: async (page) => assert.equal(await page.$$eval('[data-testid="anchors"] img[src]', (imgs) => imgs.length), 0),
  },
  {
    page: 'tiny.html', file: 'stamps/captions.json', by: 'the page', settled: 'body[data-anchors="true"]',
    // The anchors are listed by file name: no captions, no pictures.
    unused: async (page) => assert.equal(await page.$$eval('[data-testid="anchors"] img', (imgs) => imgs.length), 0),
  },
  {
    page: 'steer.html', file: 'models/manifest.json', by: 'the worker',
    unused: async (page) => assert.equal(await page.$('body[data-evaluated]'), null),
  },
  {
    page: 'align.html', file: 'gallery/gallery.json', by: 'the worker',
    unused: async (page) => assert.equal(await page.$('body[data-measured]'), null),
  },
];

for (const { page: name, file, label = file, by, settled, unused } of CASES) {
  test(`${name}: an altered ${label} (fetched by ${by}) is refused by name`, { timeout: 240_000 }, async () => {
    const matches = typeof file === 'string' ? (path) => path === `/${file}` : (path) => file.test(path);
    const server = await serveStatic(site.dist, { alter: flipByte(matches) });
    const context = await site.browser.newContext();
    try {
      const page = await context.newPage();
      const errors = recordErrors(page);
      await page.goto(`${server.url}/${name}`);
      // Where the page goes on without the file, the message must outlast what it does next.
      if (settled) await page.waitForSelector(settled, { timeout: 200_000 });
      await page.waitForSelector('[data-testid="error"]:not([hidden])', { timeout: 200_000 });
      await unused(page);
      const shown = await page.getByTestId('error').textContent();
      const named = typeof file === 'string' ? file.replace(/[.]/g, '\\.') : file.source;
      assert.match(shown, new RegExp(`${named} is damaged or was altered after the site was built`), shown);
      // The page reported it; nothing else went wrong.
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await server.close();
    }
  });
}

// Pages served over plain http from another host have no crypto.subtle; the page then hashes
// with the package's wasm sha256Hex, and must reach the same verdicts.
test('without crypto.subtle the page checks in wasm: the good file is used, an altered one refused', async () => {
  const file = 'examples/asynchow-examples.json';
  for (const altered of [false, true]) {
    const server = await serveStatic(site.dist, { alter: flipByte((path) => altered && path === `/${file}`) });
    const context = await site.browser.newContext();
    try {
      const page = await context.newPage();
      const errors = recordErrors(page);
      await page.addInitScript(() => Object.defineProperty(Crypto.prototype, 'subtle', { get: () => undefined }));
      await page.goto(`${server.url}/plans.html`);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
      assert.equal(await page.evaluate(() => globalThis.crypto.subtle), undefined);
      const options = await page.$$eval('#example-select option', (o) => o.length);
      const shown = await page.getByTestId('error').textContent();
      if (altered) {
        assert.equal(options, 1);
        assert.match(shown, /examples\/asynchow-examples\.json is damaged or was altered/);
      } else {
        assert.ok(options > 1, `${options} examples`);
        assert.equal(shown, '');
      }
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await server.close();
    }
  }
});
