// Browser end to end: the built site (www/dist), served locally, in headless Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, servedSite } from './browser.mjs';

const site = servedSite([
  ['plans.html', 'www/dist is built (scripts/build)'],
]);

async function plansPage() {
  const opened = await openPage(site.browser, `${site.url}/plans.html`);
  await opened.page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  return opened;
}

function onlyOwnOrigin(requests) {
  const outside = requests.filter(
    (u) => !u.startsWith(site.url + '/') && !u.startsWith('data:') && !u.startsWith('blob:'),
  );
  assert.deepEqual(outside, [], 'no request left the origin');
}

test('an AsyncHow example shows its optimal time and critical path', async () => {
  const { page, requests, errors } = await plansPage();
  const select = page.getByTestId('example-select');
  const water = await select.locator('option', { hasText: 'water park' }).getAttribute('value');
  await select.selectOption(water);
  const optimal = page.getByTestId('optimal-time');
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="optimal-time"]')?.dataset.high === '5100');
  assert.equal((await optimal.textContent()).trim(), '1 h 25 min');
  assert.equal(await optimal.getAttribute('data-low'), '5100');

  const critical = await page.$$eval('[data-testid="dag"] g.node.critical', (nodes) =>
    nodes.map((n) => n.dataset.stepId).filter((id) => id).sort());
  assert.deepEqual(critical, ['2', '3', '4', '5']);
  const step1 = await page.$eval('[data-testid="dag"] g.node[data-step-id="1"]', (n) => n.classList.contains('critical'));
  assert.equal(step1, false);
  const bars = await page.$$('[data-testid="gantt"] rect[data-step-id]');
  assert.ok(bars.length >= 5, 'a Gantt bar per step');

  onlyOwnOrigin(requests);
  // The worker analyses plans with the core module; the models module (tract, tokenizers) is
  // never fetched on this page (Vite names the files with a hash: latentlab_relaxed_bg-XXXX.wasm).
  const wasm = requests.filter((u) => u.endsWith('.wasm')).map((u) => u.split('/').pop().replace(/-[\w-]+\.wasm$/, '.wasm'));
  assert.deepEqual(wasm, ['latentlab_relaxed_bg.wasm']);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the PLaG prompt follows the chosen encoding and an answer is scored', async () => {
  const { page, requests, errors } = await plansPage();
  await page.getByTestId('encoding-select').selectOption('csr');
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="prompt-output"]').value.includes('compressed sparse row'));

  const expected = await page.getByTestId('optimal-time').getAttribute('data-high');
  const answer = page.getByTestId('answer-input');
  const result = page.getByTestId('score-result');
  await answer.fill(`It takes "${Number(expected) / 60} minutes".`);
  await page.getByTestId('score-button').click();
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="score-result"]')?.dataset.correct === 'true');

  await answer.fill('I think "1 second".');
  await page.getByTestId('score-button').click();
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="score-result"]')?.dataset.correct === 'false');
  assert.equal(await result.getAttribute('data-reason'), 'out_of_range');

  // The page's own optimal time, pasted as the answer, is a range: read as one (not the
  // sum of both ends) and counted wrong, as the paper does, in words that agree.
  await page.getByTestId('plan-input').fill(JSON.stringify({
    title: 'steep and pour',
    steps: [{ id: 'a', text: 'steep', duration: '8-10 min' }, { id: 'b', text: 'pour', duration: '30 s' }],
    constraints: [['a', 'b']],
  }));
  await page.getByTestId('analyze-button').click();
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="optimal-time"]').textContent.includes('–'));
  const optimalText = (await page.getByTestId('optimal-time').textContent()).trim();
  assert.equal(optimalText, '8 min 30 s – 10 min 30 s');
  await answer.fill(`"${optimalText}"`);
  await page.getByTestId('score-button').click();
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="score-result"]')?.dataset.reason === 'range_answer');
  assert.match(await result.textContent(), /a range \(.+ to .+\), not one time; the paper counts a range as wrong/);
  assert.equal(await result.getAttribute('data-correct'), 'false');

  // After a plan that fails to parse, Score does not score the older plan still drawn.
  await page.getByTestId('plan-input').fill('{"title": "broken", ');
  await page.getByTestId('score-button').click();
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="score-result"]')?.dataset.reason === 'invalid_plan');
  assert.match(await result.textContent(), /the plan in the editor is invalid \(.*JSON.*\)/);
  assert.equal(await result.getAttribute('data-correct'), null);
  assert.equal(await page.getByTestId('error').isVisible(), true);

  onlyOwnOrigin(requests);
  assert.deepEqual(errors, []);
  await page.close();
});

test('bad input shows a clear error and the page stays usable', async () => {
  const { page, errors } = await plansPage();
  const input = page.getByTestId('plan-input');
  const error = page.getByTestId('error');
  const cases = [
    ['{"title": "broken", ', 'invalid JSON'],
    [JSON.stringify({ steps: [{ id: 'a', duration: '1 min' }, { id: 'b', duration: '1 min' }],
      constraints: [['a', 'b'], ['b', 'a']] }), 'the constraints form a cycle: a → b → a'],
    [JSON.stringify({ steps: [{ id: 'a', duration: '3 fortnights' }] }), 'unknown unit "fortnights"'],
  ];
  for (const [text, message] of cases) {
    await input.fill(text);
    await page.getByTestId('analyze-button').click();
    await page.waitForFunction((m) =>
      document.querySelector('[data-testid="error"]')?.textContent.includes(m), message);
  }
  // A valid plan afterwards works and clears the error.
  await input.fill(JSON.stringify({
    title: 'How to make tea',
    steps: [{ id: 'boil', text: 'Boil water', duration: '5 minutes' },
      { id: 'steep', text: 'Steep', duration: '3 minutes' }],
    constraints: [['boil', 'steep']],
  }));
  await page.getByTestId('analyze-button').click();
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="optimal-time"]')?.dataset.high === '480');
  assert.equal((await error.textContent()).trim(), '');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the home page links to the plan page', async () => {
  const { page, requests, errors } = await openPage(site.browser, `${site.url}/`);
  await page.getByRole('link', { name: /plan graphs/i }).first().click();
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  assert.match(page.url(), /plans\.html$/);
  onlyOwnOrigin(requests);
  assert.deepEqual(errors, []);
  await page.close();
});
