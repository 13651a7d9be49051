// Browser end to end at phone width (390 px): no page scrolls sideways, after it has loaded
// and after its main action where that is cheap; headings and controls lie within the screen;
// every table sits in a box that scrolls sideways on its own; and the header folds its links
// behind a "Menu" button (a disclosure: aria-expanded, Escape closes it) that shows every link
// within the screen, while at desktop width the links show without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { recordErrors, servedSite } from './browser.mjs';

const site = servedSite([
  ['index.html', 'www/dist is built (scripts/build)'],
]);

const PHONE = { width: 390, height: 844 };

/**
 * Every page of the site: what says it has loaded, and its main action where that takes
 * seconds (the tinyBenchmarks evaluation and the sketching model's 98 MB are left out: their
 * tables are checked to scroll in their own box instead).
 */
const PAGES = [
  { name: 'index', ready: '#site-nav a[aria-current="page"]', state: 'attached' },
  {
    name: 'plans', ready: 'body[data-ready="true"]',
    action: async (page) => {
      await page.getByTestId('answer-input').fill('… so the shortest time is "360 days".');
      await page.getByTestId('score-button').click();
      await page.waitForFunction(() => document.querySelector('[data-testid="score-result"]').dataset.correct);
    },
  },
  {
    name: 'search', ready: 'body[data-ready="true"]',
    action: async (page) => {
      // pictures two to a row, not one screen-wide picture each
      const tops = await page.locator('#gallery .gallery-item').evaluateAll((items) => items.slice(0, 2).map((i) => i.getBoundingClientRect().top));
      assert.equal(tops.length, 2);
      assert.equal(tops[0], tops[1], 'the first two gallery pictures share a row');
      await page.getByTestId('query-input').fill('a cat');
      await page.getByTestId('search-button').click();
      await page.waitForSelector('[data-testid="result"]', { timeout: 120_000 });
    },
  },
  {
    name: 'ot', ready: 'body[data-ready="true"]',
    action: async (page) => {
      await page.getByTestId('real').click();
      await page.waitForSelector('body[data-real-solved="true"]', { timeout: 120_000 });
    },
  },
  { name: 'align', ready: 'body[data-measured="1"]' },
  { name: 'steer', ready: 'body[data-evaluated="true"]' },
  { name: 'collapse', ready: 'body[data-ready="true"]' },
  { name: 'tiny', ready: 'body[data-ready="true"]' },
  {
    name: 'xrm', ready: 'body[data-loaded="true"]',
    needs: 'xrm/pictures.json',
    action: async (page) => {
      await page.getByTestId('seeds').fill('1');
      await page.getByTestId('steps').fill('100');
      await page.getByTestId('run').click();
      await page.waitForSelector('body[data-ran="true"]', { timeout: 300_000 });
    },
  },
  { name: 'sketch', ready: 'body[data-ready="true"]' },
  // The tasks' and definitions' lists are read on load (the model loads on a click).
  { name: 'repo', ready: 'body[data-tasks="loaded"]', needs: 'repo/index.json' },
  { name: 'elicit', ready: 'body[data-pairs="loaded"]', needs: 'elicit/pairs.jsonl' },
];

/** What sticks out of the screen sideways, outside any box that scrolls or clips it. */
function overflow() {
  const width = window.innerWidth;
  const inBox = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') return true;
    }
    return false;
  };
  const name = (el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.dataset.testid ? `[${el.dataset.testid}]` : ''}`;
  const wide = [...document.body.querySelectorAll('*')].filter((el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && (r.right > width + 0.5 || r.left < -0.5) && !inBox(el);
  }).map(name);
  // Headings and controls a user must see or reach, each whole within the screen.
  const cut = [...document.querySelectorAll('main :is(h1, h2, h3, button, select, input, textarea, label)')]
    .filter((el) => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && !el.closest('.visually-hidden') && (r.right > width + 0.5 || r.left < -0.5) && !inBox(el);
    }).map(name);
  // Every table in a box of its own that scrolls sideways, even those filled later.
  const loose = [...document.querySelectorAll('table')]
    .filter((table) => {
      for (let a = table.parentElement; a && a !== document.body; a = a.parentElement) {
        if (['auto', 'scroll'].includes(getComputedStyle(a).overflowX)) return false;
      }
      return true;
    }).map(name);
  return { scrollWidth: document.documentElement.scrollWidth, width, wide: wide.slice(0, 8), cut, loose };
}

async function checkLayout(page, when) {
  const r = await page.evaluate(overflow);
  assert.deepEqual(r.wide, [], `${when}: nothing sticks out sideways`);
  assert.ok(r.scrollWidth <= r.width, `${when}: the page is ${r.scrollWidth} px wide on a ${r.width} px screen`);
  assert.deepEqual(r.cut, [], `${when}: headings and controls are within the screen`);
  assert.deepEqual(r.loose, [], `${when}: every table scrolls in a box of its own`);
}

for (const { name, ready, state, action, needs } of PAGES) {
  test(`${name}.html at 390 px: no sideways scrolling`, async (t) => {
    if (needs && !existsSync(`${site.dist}/${needs}`)) {
      t.skip(`${needs} is missing from the built site: the page has no data to show`);
      return;
    }
    const page = await site.browser.newPage({ viewport: PHONE });
    const errors = recordErrors(page);
    await page.goto(`${site.url}/${name}.html`);
    await page.waitForSelector(ready, { state, timeout: 240_000 });
    await checkLayout(page, `${name}, loaded`);
    if (action) {
      await action(page);
      await checkLayout(page, `${name}, after its main action`);
    }
    // The header is one row: the brand and the menu button, the links folded away.
    const header = await page.locator('#site-header').boundingBox();
    assert.ok(header.height < 80, `${name}: header ${header.height} px high`);
    assert.equal(await page.locator('#site-nav').isVisible(), false);
    assert.equal(await page.locator('.nav-toggle').isVisible(), true);
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test('the menu button opens and closes the links at 390 px; at 1280 px they need none', async () => {
  const page = await site.browser.newPage({ viewport: PHONE });
  const errors = recordErrors(page);
  await page.goto(`${site.url}/tiny.html`);
  await page.waitForSelector('body[data-ready="true"]');
  const toggle = page.getByRole('button', { name: 'Menu' });
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  assert.equal(await toggle.getAttribute('aria-controls'), 'site-nav');
  const nav = page.getByRole('navigation', { name: 'Main' });
  assert.equal(await nav.isVisible(), false);

  await toggle.click();
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  assert.equal(await nav.isVisible(), true);
  const links = await nav.getByRole('link').evaluateAll((as) => as.map((a) => {
    const r = a.getBoundingClientRect();
    return { text: a.textContent, left: r.left, right: r.right, height: r.height, current: a.getAttribute('aria-current') };
  }));
  assert.equal(links.length, 12);
  for (const link of links) {
    assert.ok(link.left >= 0 && link.right <= PHONE.width, `${link.text} within the screen`);
    assert.ok(link.height >= 36, `${link.text}: a finger-sized target (${link.height} px)`);
  }
  assert.deepEqual(links.filter((l) => l.current === 'page').map((l) => l.text), ['tinyBenchmarks']);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'the open menu fits');
  // the links follow the button in the tab order
  await toggle.focus();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Home');
  // Escape closes the menu and gives the focus back to its button
  await page.keyboard.press('Escape');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  assert.equal(await nav.isVisible(), false);
  assert.equal(await page.evaluate(() => document.activeElement.className), 'nav-toggle');
  await toggle.click();
  await toggle.click();
  assert.equal(await nav.isVisible(), false, 'a second press closes it');

  await page.setViewportSize({ width: 1280, height: 900 });
  assert.equal(await toggle.isVisible(), false);
  assert.equal(await nav.isVisible(), true);
  assert.equal(await nav.getByRole('link').count(), 12);
  const header = await page.locator('#site-header').boundingBox();
  assert.ok(header.height < 70, `at 1280 px the brand and the links are one row (header ${header.height} px high)`);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
  assert.deepEqual(errors, []);
  await page.close();
});
