// Debian's Chromium driven by playwright-core; no browser is ever downloaded.
import { chromium } from 'playwright-core';

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

/** A page that records every request and every uncaught error. */
export async function openPage(browser, url) {
  const page = await browser.newPage();
  const requests = [];
  const errors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(url);
  return { page, requests, errors };
}
