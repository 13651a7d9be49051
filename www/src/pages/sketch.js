// Prompt Sketching page: loads SmolLM2-135M in the worker (download with progress, sha256,
// Cache API), fills the template with the chosen decoder while showing the leading
// hypothesis, puts argmax and beam_var side by side, and runs a sample of a BIG-bench task
// in the three answer modes (`latentlab sketch eval` runs whole tasks).
import { renderShell } from '../shell.js';
import { ModelSession } from '../lm-session.js';

renderShell('sketch');

const $ = (id) => document.getElementById(id);
// Absolute: the worker resolves relative URLs against its own script, not this page.
const TASK_URL = (name) => new URL(`./bigbench/${name}.json`, location.href).href;
const DEFAULT_TEMPLATE = `Q: What is the capital of France, and what is it famous for?
A: The capital of France is[CITY]. It is famous for[REASON]
where CITY in [" Paris", " Lyon", " Marseille"] and STOPS_AT(REASON, ".") and len(TOKENS(REASON)) < 24`;
const MODES = [
  { label: 'direct', mode: 'direct' },
  { label: 'sketch, argmax', mode: 'sketch', decoder: 'argmax' },
  { label: 'sketch, beam_var', mode: 'sketch', decoder: 'beam_var', beams: 2 },
  { label: 'rank', mode: 'rank' },
];

let busy = false;
const session = new ModelSession({
  status: $('model-status'),
  bar: $('load-progress'),
  onChange: () => setBusy(busy),
  describe: (info) => `${info.name}: ${info.vocabSize.toLocaleString()} tokens, context ${info.contextLength.toLocaleString()}`,
});

function showError(err) {
  $('error').textContent = err ? (err.message ?? String(err)) : '';
  $('error').hidden = !err;
}

function setBusy(value) {
  busy = value;
  const loaded = session.loaded;
  $('run').disabled = !loaded || value;
  $('compare').disabled = !loaded || value;
  $('evaluate').disabled = !loaded || value;
  $('stop').disabled = !value;
  $('load').disabled = value || loaded;
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

/** Renders segments ([text, hole|null]) into `el`, hole values as highlighted <mark>s. */
function renderSegments(el, segments) {
  el.replaceChildren(...segments.map(([text, hole]) => {
    if (hole === null) return document.createTextNode(text);
    const mark = document.createElement('mark');
    mark.className = 'hole';
    mark.dataset.hole = hole;
    mark.title = hole;
    mark.textContent = text;
    return mark;
  }));
}

function scoresText(r) {
  return `log p = ${r.logprob.toFixed(3)} (template ${r.template_logprob.toFixed(3)}, generated `
    + `${r.generated_logprob.toFixed(3)}); ${r.tokens_generated} tokens generated in ${r.seconds.toFixed(1)} s`;
}

async function fill(slot, options) {
  const text = $(`out-${slot}-text`);
  $(`out-${slot}-caption`).textContent = options.decoder;
  $(`out-${slot}-scores`).textContent = '';
  const result = await session.client.call('lm.sketch', { template: $('template').value, options }, {
    onProgress: ({ step }) => {
      if (step) renderSegments(text, step.segments);
    },
  });
  renderSegments(text, result.segments);
  $(`out-${slot}-scores`).textContent = scoresText(result);
  text.closest('figure').dataset.logprob = String(result.logprob);
  text.closest('figure').dataset.values = JSON.stringify(result.values);
  return result;
}

async function runSketch(compare) {
  showError(null);
  setBusy(true);
  const beams = Number($('beams').value);
  $('out-b-text').closest('figure').hidden = !compare;
  $('sketch-status').textContent = 'Generating…';
  delete document.body.dataset.sketched;
  try {
    if (compare) {
      const a = await fill('a', { decoder: 'argmax' });
      const b = await fill('b', { decoder: 'beam_var', beams });
      const better = b.logprob > a.logprob ? 'beam_var' : b.logprob < a.logprob ? 'argmax' : 'neither';
      $('sketch-status').textContent = `Higher joint log-probability: ${better}.`;
    } else {
      const r = await fill('a', { decoder: $('decoder').value, beams });
      $('sketch-status').textContent = `Done: ${Object.keys(r.values).length} holes filled.`;
    }
    document.body.dataset.sketched = compare ? 'compare' : 'one';
  } catch (err) {
    showError(err);
    $('sketch-status').textContent = '';
  } finally {
    setBusy(false);
  }
}

/** A sketch runs synchronously in the worker: stopping it means a new worker, and the model
 * is read again from the browser's cache. */
async function stop() {
  if (!busy) return;
  $('sketch-status').textContent = 'Stopped; reloading the model from the cache…';
  setBusy(false);
  await session.restart().catch(showError);
}

function percent(x) {
  return `${(100 * x).toFixed(1)}%`;
}

async function evaluate() {
  showError(null);
  setBusy(true);
  $('eval-stop').disabled = false;
  const name = $('task').value;
  const size = Number($('sample').value);
  const bar = $('eval-progress');
  bar.hidden = false;
  bar.max = size * MODES.length;
  bar.value = 0;
  $('eval-rows').replaceChildren();
  delete document.body.dataset.evaluated;
  let before = 0;
  try {
    const report = await session.client.call('lm.eval', { name, url: TASK_URL(name), size, modes: MODES }, {
      onProgress: (p) => {
        const index = MODES.findIndex((m) => m.label === p.label);
        before = index * p.total;
        bar.max = MODES.length * p.total;
        bar.value = before + p.done;
        $('eval-status').textContent = `${p.label}: ${p.done} of ${p.total} (${p.correct} right)`;
      },
    });
    for (const row of report.rows) {
      const tr = document.createElement('tr');
      tr.dataset.label = row.label;
      tr.dataset.accuracy = String(row.accuracy);
      tr.dataset.n = String(row.n);
      const cells = [row.label, `${row.correct} / ${row.n}`, percent(row.accuracy),
        `${percent(row.ci95[0])} – ${percent(row.ci95[1])}`, row.seconds.toFixed(1)];
      for (const c of cells) {
        const td = document.createElement('td');
        td.textContent = c;
        tr.append(td);
      }
      $('eval-rows').append(tr);
    }
    $('eval-status').textContent = report.cancelled
      ? `Stopped after ${report.rows.length} of ${MODES.length} modes.`
      : `${report.indices.length} examples of ${name}, spread over the task.`;
    document.body.dataset.evaluated = report.cancelled ? 'cancelled' : 'true';
  } catch (err) {
    showError(err);
  } finally {
    bar.hidden = true;
    $('eval-stop').disabled = true;
    setBusy(false);
  }
}

$('template').value = DEFAULT_TEMPLATE;
$('beams').addEventListener('input', () => { $('beams-out').value = $('beams').value; });
$('sample').addEventListener('input', () => { $('sample-out').value = $('sample').value; });
$('load').addEventListener('click', loadModel);
$('run').addEventListener('click', () => runSketch(false));
$('compare').addEventListener('click', () => runSketch(true));
$('stop').addEventListener('click', stop);
$('evaluate').addEventListener('click', evaluate);
$('eval-stop').addEventListener('click', () => session.client.call('lm.cancel').catch(showError));
setBusy(false);
document.body.dataset.ready = 'true';
