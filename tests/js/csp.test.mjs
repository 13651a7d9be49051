// Every page of the built site under the strict Content-Security-Policy of www/csp.js, sent as
// a header (which, unlike the <meta> copy in each page, also binds the worker): each page gets
// to the state its own page test waits for, with no policy violation, no uncaught error and no
// error shown. The policy is shown to be enforced, not just sent, by an inline script that it
// must block. Every data file a page or its worker fetches on the way is in the sha256 table of
// the build and came through a fetch (www/src/fetch-data.js checks it; a picture loaded by
// an <img> itself would not be checked).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { builtIntegrityTable, dataPath, recordErrors, servedSite } from './browser.mjs';
import { CONTENT_SECURITY_POLICY } from './static-server.mjs';

const site = servedSite([
  ['index.html', 'www/dist is built (scripts/build)'],
  ['models/manifest.json', 'the models are copied into the site (scripts/build)'],
]);

// What each page shows once it has used its worker (as its own page test waits for).
const PAGES = {
  'index.html': 'nav a[aria-current="page"]', // no worker: the shell is rendered
  'plans.html': 'body[data-ready="true"]',
  'search.html': 'body[data-ready="true"]', // models loaded, gallery indexed
  'ot.html': 'body[data-ready="true"]',
  'align.html': 'body[data-measured="1"]',
  'steer.html': 'body[data-evaluated="true"]',
  'collapse.html': 'body[data-ready="true"]',
  'tiny.html': 'body[data-anchors="true"]',
  'xrm.html': 'body[data-loaded="true"]',
  'sketch.html': 'body[data-ready="true"]', // the language model loads on a click, below
  'repo.html': 'body[data-ready="true"]', // the language model loads on a click, below
  'elicit.html': 'body[data-ready="true"]', // the language model loads on a click, below
};

let integrity = null;
before(async () => {
  integrity = await builtIntegrityTable();
});

/**
 * A fresh page that records policy violations (from the start), page errors and console
 * errors, and its data requests as {path, type}, the worker's included.
 */
async function openRecorded(context, url) {
  const page = await context.newPage();
  const errors = recordErrors(page);
  const data = [];
  page.on('request', (r) => {
    const path = dataPath(site.url, r.url());
    if (path !== null) data.push({ path, type: r.resourceType() });
  });
  await page.addInitScript(() => {
    window.cspViolations = [];
    window.addEventListener('securitypolicyviolation', (e) => {
      window.cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  await page.goto(url);
  return { page, errors, data };
}

/** Fails with the page's own error message, if it shows one. */
async function assertNoErrorShown(page, name) {
  const shown = await page.$$eval('[data-testid="error"]:not([hidden])', (els) => els.map((e) => e.textContent));
  assert.deepEqual(shown, [], `${name} shows an error`);
}

test('every built page carries the policy in a <meta> and every page is listed here', () => {
  const pages = readdirSync(site.dist).filter((f) => f.endsWith('.html')).sort();
  assert.deepEqual(pages, Object.keys(PAGES).sort());
  for (const name of pages) {
    const html = readFileSync(`${site.dist}/${name}`, 'utf8').replaceAll('&#39;', "'");
    assert.ok(html.includes(`<meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}">`), name);
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>|\sstyle=|\son[a-z]+=/i, `${name}: inline script, style or handler`);
  }
});

for (const [name, ready] of Object.entries(PAGES)) {
  test(`${name} works under the policy`, { timeout: 300_000 }, async () => {
    const context = await site.browser.newContext();
    try {
      const { page, errors, data } = await openRecorded(context, `${site.url}/${name}`);
      await page.waitForSelector(ready, { timeout: 240_000 });
      if (['sketch.html', 'repo.html', 'elicit.html'].includes(name)) {
        // The page's worker does nothing until the model is asked for.
        await page.getByTestId('load').click();
        await page.waitForFunction(() => document.body.dataset.model === 'loaded'
          || !document.querySelector('[data-testid="error"]').hidden, null, { timeout: 240_000 });
      }
      if (name === 'search.html') {
        // The gallery's thumbnails are blob: URLs (img-src).
        await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="gallery-item"] img')]
          .every((img) => img.complete && img.naturalWidth > 0), null, { timeout: 30_000 });
      }
      await assertNoErrorShown(page, name);
      assert.deepEqual(await page.evaluate(() => window.cspViolations), [], `${name}: policy violations`);
      assert.deepEqual(errors, [], `${name}: errors`);
      const unchecked = data.filter(({ path, type }) => !(path in integrity) || type !== 'fetch');
      assert.deepEqual(unchecked, [], `${name}: data requests outside the sha256 table or not made by fetch`);
      if (name === 'steer.html') assert.ok(data.some(({ path }) => path === 'models/manifest.json'), 'the worker\'s requests are seen');
      if (name === 'search.html') {
        // A CLIP model on another host is refused by connect-src: the page says why.
        await page.getByTestId('model-select').selectOption('clip');
        await page.getByTestId('clip-text-url').fill('http://localhost:9/text_model.onnx');
        await page.getByTestId('clip-tokenizer-url').fill('./models/minilm-l6-v2/tokenizer.json');
        await page.getByTestId('clip-vision-url').fill('http://localhost:9/vision_model.onnx');
        await page.getByTestId('clip-load').click();
        await page.waitForFunction(() => !document.querySelector('[data-testid="error"]').hidden, null, { timeout: 60_000 });
        assert.match(await page.getByTestId('error').textContent(),
          /refused to download from http:\/\/localhost:9\/text_model\.onnx.*Content-Security-Policy allows downloads from the site itself only/);
      }
      if (name === 'index.html') {
        // The recorder sees what the policy blocks: an injected inline script must not run.
        await page.evaluate(() => {
          const script = document.createElement('script');
          script.textContent = 'window.inlineRan = true';
          document.head.append(script);
        });
        assert.equal(await page.evaluate(() => window.inlineRan), undefined);
        assert.ok((await page.evaluate(() => window.cspViolations)).some((v) => v.startsWith('script-src')));
      }
      await page.close();
    } finally {
      await context.close();
    }
  });
}
