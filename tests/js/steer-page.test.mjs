// Browser end to end: the steering page embeds the synthetic biographies with the bundled
// text encoder in its worker, fits and evaluates steering, draws the PCA charts and runs a
// retrieval query before and after; bad settings show an error and the page stays usable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, servedSite } from './browser.mjs';

const site = servedSite([
  ['steer.html', 'www/dist is built (scripts/build)'],
]);

const value = (page, id) =>
  page.$eval(`[data-testid="${id}"]`, (el) => Number(el.dataset.value));

test('steering erases gender, shrinks the TPR-gap, and changes search results', async () => {
  const { page, requests, errors } = await openPage(site.browser, `${site.url}/steer.html`);
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 180_000 });

  const conceptChance = await value(page, 'concept-chance');
  const conceptBefore = await value(page, 'concept-before');
  const conceptAfter = await value(page, 'concept-after');
  assert.ok(conceptBefore > 0.95, `gender is readable before (${conceptBefore})`);
  assert.ok(conceptAfter < conceptChance + 0.1, `and not after (${conceptAfter}, chance ${conceptChance})`);
  const gapBefore = await value(page, 'gap-before');
  const gapAfter = await value(page, 'gap-after');
  assert.ok(gapAfter < gapBefore, `TPR-gap ${gapBefore} → ${gapAfter}`);
  assert.ok(await value(page, 'task-after') > 2 * await value(page, 'task-chance'));
  const gapRows = await page.$$('[data-testid="gap-table"] tbody tr');
  assert.ok(gapRows.length >= 4, 'a TPR-gap row per profession');

  // Both charts drew something (a Chart.js canvas has a non-zero size once rendered).
  for (const id of ['chart-before', 'chart-after']) {
    const width = await page.$eval(`[data-testid="${id}"]`, (c) => c.width);
    assert.ok(width > 100, `${id} is drawn`);
  }

  // Mean matching gives its own figures through the same controls.
  await page.getByTestId('method').selectOption('mean');
  await page.evaluate(() => { delete document.body.dataset.evaluated; });
  await page.getByTestId('run').click();
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 60_000 });
  assert.ok(await value(page, 'concept-after') < conceptChance + 0.1);

  await page.getByTestId('search').click();
  await page.waitForSelector('body[data-searched="true"]', { timeout: 60_000 });
  const hits = async (key) => page.$$eval(`[data-testid="hits-${key}"] li`, (items) => items.map((i) => i.textContent));
  const beforeHits = await hits('before');
  const afterHits = await hits('after');
  assert.equal(beforeHits.length, 10);
  assert.equal(afterHits.length, 10);
  assert.notDeepEqual(afterHits, beforeHits, 'steering changes the ranking');
  // The default query says "He": before steering its neighbours are men's biographies;
  // once gender is steered away they are mixed.
  const men = async (key) => page.$$eval(`[data-testid="hits-${key}"] li[data-z="1"]`, (items) => items.length);
  assert.ok(await men('before') >= 8, `before: ${await men('before')} of 10 are men`);
  assert.ok(await men('after') <= 7, `after: ${await men('after')} of 10 are men`);

  const outside = requests.filter((u) => !u.startsWith(site.url + '/') && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(outside, [], 'no request left the origin');
  assert.deepEqual(errors, []);
  await page.close();
});

test('erasing region, a concept unrelated to profession, keeps the profession probe', async () => {
  const { page, errors } = await openPage(site.browser, `${site.url}/steer.html`);
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 180_000 });
  await page.getByTestId('concept').selectOption('region');
  await page.evaluate(() => { delete document.body.dataset.evaluated; });
  await page.getByTestId('run').click();
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 60_000 });
  assert.ok(await value(page, 'concept-after') < await value(page, 'concept-chance') + 0.1);
  assert.ok(await value(page, 'task-after') >= await value(page, 'task-before') - 0.05);
  const legend = await page.$eval('[data-testid="results"] .concept-name', (el) => el.textContent);
  assert.equal(legend, 'Region');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a bad number is named next to its field, without asking the worker; the page stays usable', async () => {
  const { page } = await openPage(site.browser, `${site.url}/steer.html`);
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 180_000 });
  const before = await value(page, 'concept-after');
  // Every request the page sends its worker, by operation.
  const sent = [];
  page.on('console', (m) => { if (m.text().startsWith('op:')) sent.push(m.text().slice(3)); });
  await page.evaluate(() => {
    const post = Worker.prototype.postMessage;
    Worker.prototype.postMessage = function (message, ...rest) {
      console.log(`op:${message?.op}`);
      return post.call(this, message, ...rest);
    };
  });
  const shown = (id) => page.$eval(`[data-testid="${id}"]`, (el) => (el.hidden ? null : el.textContent));
  const invalid = (id) => page.$eval(`[data-testid="${id}"]`, (el) => el.getAttribute('aria-invalid'));
  assert.deepEqual(await page.$eval('[data-testid="seed"]', (el) => [el.min, el.step]), ['0', '1']);

  for (const bad of ['-3', '', '1.5']) {
    await page.getByTestId('seed').fill(bad);
    await page.getByTestId('run').click();
    assert.equal(await shown('seed-error'), 'The split seed must be a whole number, 0 or more.', `seed ${JSON.stringify(bad)}`);
    assert.equal(await invalid('seed'), 'true');
    assert.match(await page.getByTestId('status').textContent(), /^Not run: correct the marked field first\.$/);
  }
  // The message sits beside the field, on its line and just right of it, at any width.
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    const field = await page.getByTestId('seed').boundingBox();
    const note = await page.getByTestId('seed-error').boundingBox();
    const right = field.x + field.width;
    assert.ok(note.y < field.y + field.height && field.y < note.y + note.height && note.x >= right && note.x - right < 20
      && note.x + note.width <= width, `${width}px: field ${JSON.stringify(field)}, message ${JSON.stringify(note)}`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByTestId('relative-reg').fill('-1');
  await page.getByTestId('search').click();
  assert.equal(await shown('relative-reg-error'), 'The regularisation must be a number, 0 or more.');
  assert.deepEqual(sent, [], 'nothing was sent to the worker');
  assert.equal(await page.getByTestId('error').isHidden(), true);
  assert.equal(await value(page, 'concept-after'), before, 'the results are those of the last run');

  // Corrected, the marks go away as the visitor types, and the page runs with seed 3.
  await page.getByTestId('seed').fill('3');
  assert.equal(await shown('seed-error'), null);
  assert.equal(await invalid('seed'), 'false');
  await page.getByTestId('relative-reg').fill('0.01');
  assert.equal(await shown('relative-reg-error'), null);
  await page.evaluate(() => { delete document.body.dataset.evaluated; });
  await page.getByTestId('run').click();
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 60_000 });
  assert.deepEqual(sent, ['steer.run']);
  assert.equal(await page.getByTestId('error').isHidden(), true);
  await page.close();
});

test('each label stays beside its control, at desktop and phone widths', async () => {
  const { page } = await openPage(site.browser, `${site.url}/steer.html`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 180_000 });
  for (const width of [1280, 900, 390]) {
    await page.setViewportSize({ width, height: 900 });
    const pairs = await page.$$eval('.steer-page label[for]', (labels) => labels.map((label) => {
      const control = document.getElementById(label.htmlFor);
      const l = label.getBoundingClientRect();
      const c = control.getBoundingClientRect();
      return { id: label.htmlFor, label: [l.left, l.right, l.top, l.bottom], control: [c.left, c.right, c.top, c.bottom] };
    }));
    assert.ok(pairs.length >= 6);
    for (const { id, label, control } of pairs) {
      // same line (vertical overlap), the control starting just right of its label, in the viewport
      assert.ok(label[2] < control[3] && control[2] < label[3], `${width}px: ${id}'s label is not on its control's line`);
      assert.ok(control[0] >= label[1] && control[0] - label[1] < 20, `${width}px: ${id} is ${control[0] - label[1]}px from its label`);
      assert.ok(control[1] <= width, `${width}px: ${id} ends at ${control[1]}px, past the viewport`);
    }
  }
  await page.close();
});
