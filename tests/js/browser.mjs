// Debian's Chromium driven by playwright-core; no browser is ever downloaded.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { serveStatic } from './static-server.mjs';

const FLAGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** `webgpu: true` adds the flag that gives headless Chromium a SwiftShader adapter. */
export async function launch({ webgpu = false } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: webgpu ? [...FLAGS, '--enable-unsafe-webgpu'] : FLAGS,
  });
}

/** The uncaught errors and console errors (its workers' included) of `page` from now on, as an array that fills up. */
export function recordErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return errors;
}

/** A page that records every request and every uncaught error. */
export async function openPage(browser, url) {
  const page = await browser.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const errors = recordErrors(page);
  await page.goto(url);
  return { page, requests, errors };
}

/** Waits until `selector` matches or the page shows its error box, and fails with the error. */
export async function settled(page, selector, timeout) {
  await page.waitForFunction((sel) => document.querySelector(sel)
    || !document.querySelector('[data-testid="error"]').hidden, selector, { timeout });
  const error = page.getByTestId('error');
  if (!(await error.isHidden())) assert.fail(`the page shows an error: ${await error.textContent()}`);
}

/**
 * The built site the page tests serve: www/dist, or LATENTLAB_SITE_DIR where a second build
 * (`vite build --outDir DIR`) is tested beside it without overwriting it.
 */
export const DIST = process.env.LATENTLAB_SITE_DIR || fileURLToPath(new URL('../../www/dist', import.meta.url));

/** The sha256 table the build put into the bundle (www/integrity-plugin.js): {path under the site → hex}. */
export async function builtIntegrityTable() {
  const chunk = readdirSync(`${DIST}/assets`).find((f) => f.includes('latentlab-integrity'));
  assert.ok(chunk, 'the build emitted the sha256 table (www/integrity-plugin.js)');
  return (await import(pathToFileURL(`${DIST}/assets/${chunk}`).href)).default;
}

/**
 * A same-origin request for a data file: its path under the site, else null. Pages, code,
 * styles, wasm and the tab's icon (which the browser draws and no code reads) are not data.
 */
export function dataPath(siteUrl, requestUrl) {
  if (!requestUrl.startsWith(`${siteUrl}/`)) return null;
  const path = decodeURIComponent(new URL(requestUrl).pathname.slice(1));
  return path === '' || path === 'favicon.svg' || /\.(html|m?js|css|wasm)$/.test(path) ? null : path;
}

/**
 * For a page test file: before its tests, checks that the built site has each of `required`
 * ([file under www/dist, what is missing otherwise]), serves www/dist on localhost and
 * launches Chromium; after them, closes both. `site.url`, `site.browser` are set by then.
 */
export function servedSite(required) {
  const site = { dist: DIST, url: null, browser: null, server: null };
  before(async () => {
    for (const [file, why] of required) assert.ok(existsSync(`${DIST}/${file}`), why);
    site.server = await serveStatic(DIST);
    site.url = site.server.url;
    site.browser = await launch();
  });
  after(async () => {
    await site.browser?.close();
    await site.server?.close();
  });
  return site;
}

/** The npm package as build_wasm leaves it (pkg/). */
export const PKG = fileURLToPath(new URL('../../pkg', import.meta.url));

/**
 * For a test file that imports the package straight into a page: before its tests, serves
 * pkg/ on localhost and launches Chromium (`launchOptions` as for `launch`); after them,
 * closes both. `served.url`, `served.browser` are set by then.
 */
export function servedPackage(launchOptions = {}) {
  const served = { url: null, browser: null, server: null };
  before(async () => {
    assert.ok(existsSync(`${PKG}/latentlab_bg.wasm`), 'pkg/ is built (scripts/build)');
    served.server = await serveStatic(PKG);
    served.url = served.server.url;
    served.browser = await launch(launchOptions);
  });
  after(async () => {
    await served.browser?.close();
    await served.server?.close();
  });
  return served;
}

/**
 * A page on the package's origin (`served`: servedPackage's; in `context`, default a fresh one of
 * its browser) with the core module imported and initialised as `window.ll`. `recordDevices`:
 * remember every WebGPU device the module asks for (`window.devices`, so a test can destroy
 * one). Returns the page and its uncaught errors.
 */
export async function openPackagePage(served, { context = served.browser, recordDevices = false } = {}) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  if (recordDevices) {
    await page.addInitScript(() => {
      window.devices = [];
      const request = GPUAdapter.prototype.requestDevice;
      GPUAdapter.prototype.requestDevice = async function (...args) {
        const device = await request.apply(this, args);
        window.devices.push(device);
        return device;
      };
    });
  }
  await page.route(`${served.url}/test.html`, (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>package</title>' }));
  await page.goto(`${served.url}/test.html`);
  await page.evaluate(async () => {
    window.ll = await import('/index.js');
    await window.ll.default();
  });
  return { page, errors };
}
