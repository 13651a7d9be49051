// Debian's Chromium driven by playwright-core; no browser is ever downloaded.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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

const DIST = fileURLToPath(new URL('../../www/dist', import.meta.url));

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
