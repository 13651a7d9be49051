// Information elicitation page: pick a word, read WordNet's definition (the honest report)
// and GCIDE's (the peer), write your own, and see each scored against the peer by the
// chosen mechanism on SmolLM2-135M, next to five manipulations of the honest report
// (`latentlab elicit score` measures the same over many words).
import { renderShell } from '../shell.js';
import { ModelSession } from '../lm-session.js';
import { fetchVerified } from '../fetch-data.js';

renderShell('elicit');

const $ = (id) => document.getElementById(id);
const PAIRS_URL = new URL('./elicit/pairs.jsonl', location.href).href;
const LABELS = {
  yours: 'your definition',
  honest: 'WordNet (honest)',
  shuffled: 'its words shuffled',
  truncated: 'its first half',
  generic: 'generic',
  other_word: "another word's definition",
  copied: "the peer's copied",
};

let busy = false;
const session = new ModelSession({
  status: $('model-status'),
  bar: $('load-progress'),
  activations: 'int8',
  onChange: () => setBusy(busy),
  describe: (info) => `${info.name} (${info.activations} activations)`,
});
let pairs = null; // [{word, report, peer}], sorted by word
let seed = 0;

function showError(err) {
  $('error').textContent = err ? (err.message ?? String(err)) : '';
  $('error').hidden = !err;
}

function setBusy(value) {
  busy = value;
  $('score').disabled = !session.loaded || pairs === null || value || !currentPair();
  $('load').disabled = value || session.loaded;
}


async function loadModel() {
  showError(null);
  setBusy(true);
  try {
    await session.load();
  } catch (err) {
    showError(err);
  } finally {
    setBusy(false);
  }
}

async function loadPairs() {
  try {
    const response = await fetchVerified(PAIRS_URL);
    if (!response.ok) {
      throw new Error(`The definitions are missing (elicit/pairs.jsonl: HTTP ${response.status}). The site build `
        + "pairs them from Debian's dict-wn and dict-gcide (scripts/lib.sh, make_elicit_site_data).");
    }
    pairs = (await response.text()).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    $('words').replaceChildren(...pairs.map((p) => new Option(p.word)));
    $('data-status').textContent = `${pairs.length.toLocaleString()} words defined by both dictionaries.`;
    $('word').value = pairs.find((p) => p.word === 'lighthouse')?.word ?? pairs[0].word;
    showPair();
    document.body.dataset.pairs = 'loaded';
  } catch (err) {
    $('data-status').textContent = err.message ?? String(err);
    document.body.dataset.pairs = 'missing';
  } finally {
    setBusy(busy);
  }
}

function currentPair() {
  const word = $('word').value.trim().toLowerCase();
  return pairs?.find((p) => p.word === word) ?? null;
}

function showPair() {
  const pair = currentPair();
  $('report').textContent = pair ? pair.report : '';
  $('peer').textContent = pair ? pair.peer : (pairs ? 'Not among the words both dictionaries define: pick one from the list.' : '');
  setBusy(busy);
}

/** A different word than `pair`'s, chosen by the page's seed: the other-word manipulation
 * and TVD-MI's peer about another item. */
function otherPair(pair) {
  const i = pairs.indexOf(pair);
  const j = (i + 1 + ((seed * 7919 + 17) % (pairs.length - 1))) % pairs.length;
  return pairs[j];
}

async function score() {
  showError(null);
  const pair = currentPair();
  if (!pair) return;
  setBusy(true);
  $('score-status').textContent = 'Scoring…';
  delete document.body.dataset.scored;
  const other = otherPair(pair);
  try {
    const table = await session.client.call('elicit.table', {
      word: pair.word,
      userReport: $('yours').value,
      report: pair.report,
      peer: pair.peer,
      otherReport: other.report,
      otherPeer: other.peer,
      mechanism: $('mechanism').value,
      seed,
    });
    const best = Math.max(...table.rows.map((r) => r.score));
    $('score-rows').replaceChildren(...table.rows.map((row) => {
      const tr = document.createElement('tr');
      tr.dataset.label = row.label;
      tr.dataset.score = String(row.score);
      if (row.score === best) tr.classList.add('best');
      for (const c of [LABELS[row.label] ?? row.label, row.report, row.score.toFixed(3)]) {
        const td = document.createElement('td');
        td.textContent = c;
        tr.append(td);
      }
      return tr;
    }));
    const honest = table.rows.find((r) => r.label === 'honest').score;
    const beaten = table.rows.filter((r) => !['honest', 'yours'].includes(r.label) && r.score < honest).length;
    const yours = table.rows.find((r) => r.label === 'yours');
    $('score-status').textContent = `${table.mechanism}: the honest definition outscores ${beaten} of 5 manipulations`
      + (yours ? `; yours scores ${yours.score.toFixed(3)} against its ${honest.toFixed(3)}.` : '.');
    document.body.dataset.scored = 'true';
  } catch (err) {
    showError(err);
    $('score-status').textContent = '';
  } finally {
    setBusy(false);
  }
}

$('word').addEventListener('input', showPair);
$('random').addEventListener('click', () => {
  if (!pairs) return;
  seed += 1;
  $('word').value = pairs[(seed * 104729) % pairs.length].word;
  showPair();
});
$('load').addEventListener('click', loadModel);
$('score').addEventListener('click', score);
setBusy(false);
loadPairs().then(() => { document.body.dataset.ready = 'true'; });
