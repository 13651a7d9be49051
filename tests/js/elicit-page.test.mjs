// Browser end to end: the elicitation page reads the definitions the site build paired from
// WordNet and GCIDE, loads SmolLM2-135M in its worker, and scores a definition the user
// writes against the peer's next to the honest one and its five manipulations, with PMI and
// then GPPM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, servedSite, settled } from './browser.mjs';


const site = servedSite([
  ['elicit.html', 'www/dist is built (scripts/build)'],
  ['models/smollm2-135m-instruct/model.gguf', 'the site build copies the language model (scripts/build)'],
  ['elicit/pairs.jsonl', "the site build pairs the definitions from Debian's dict-wn and dict-gcide (scripts/lib.sh)"],
]);

test('your definition, the honest one and its manipulations scored against the peer', async () => {
  const context = await site.browser.newContext();
  const { page, errors } = await openPage(context, `${site.url}/elicit.html`);
  await settled(page, 'body[data-pairs="loaded"]', 60_000);
  assert.match(await page.getByTestId('data-status').textContent(), /2,000 words defined by both/);
  const peer = await page.getByTestId('peer').textContent();
  assert.ok(peer.length > 0);
  assert.equal(await page.getByTestId('score').isDisabled(), true, 'nothing is scored before the model is loaded');

  await page.getByTestId('load').click();
  await settled(page, 'body[data-model="loaded"]', 240_000);
  await page.getByTestId('yours').fill('a tall tower with a bright light that guides ships at night');
  for (const mechanism of ['pmi', 'gppm']) {
    await page.getByTestId('mechanism').selectOption(mechanism);
    await page.evaluate(() => { delete document.body.dataset.scored; });
    await page.getByTestId('score').click();
    await settled(page, 'body[data-scored="true"]', 120_000);
    const rows = await page.$$eval('#score-rows tr', (trs) => trs.map((tr) => ({
      label: tr.dataset.label, score: Number(tr.dataset.score), text: tr.children[1].textContent,
    })));
    assert.deepEqual(rows.map((r) => r.label), ['yours', 'honest', 'shuffled', 'truncated', 'generic', 'other_word', 'copied']);
    for (const r of rows) assert.ok(Number.isFinite(r.score), JSON.stringify(r));
    assert.equal(rows.find((r) => r.label === 'copied').text, peer);
    assert.equal(rows.find((r) => r.label === 'generic').text, 'a thing or a kind of thing');
    assert.match(await page.getByTestId('score-status').textContent(), new RegExp(`^${mechanism}: the honest definition outscores [0-5] of 5`));
  }
  assert.deepEqual(errors, []);
  await context.close();
});
