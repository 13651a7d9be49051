// Affine steering page: embeds the synthetic biographies in the worker, fits and evaluates
// a steering function there, and draws the probes, the TPR-gaps, PCA views (Chart.js) and a
// retrieval query before and after. The main thread never loads wasm.
import { Chart, ScatterController, PointElement, LinearScale, Legend, Tooltip } from 'chart.js';
import { renderShell } from '../shell.js';
import { LatentlabClient } from '../client.js';

Chart.register(ScatterController, PointElement, LinearScale, Legend, Tooltip);
renderShell('steer');

const MODELS_URL = new URL('./models/', window.location.href).href;
const BIOS_URL = new URL('./bios.json', window.location.href).href;
const CONCEPT_COLOURS = ['#d6336c', '#1c7ed6'];
const TASK_COLOURS = ['#e8590c', '#2f9e44', '#1971c2', '#ae3ec9', '#f08c00', '#0c8599', '#c2255c', '#5c940d'];

const $ = (id) => document.getElementById(id);
const els = {
  error: $('error'), concept: $('concept'), method: $('method'), reg: $('relative-reg'), applyTo: $('apply-to'),
  seed: $('seed'), run: $('run'), progress: $('progress'), status: $('status'),
  note: $('results-note'), colourBy: $('colour-by'), query: $('query'), search: $('search'),
};
const client = new LatentlabClient();
let meta = null; // {n, dim, concepts, conceptLabels, task, y}
let embedded = false; // whether the worker holds the embedded biographies
let last = null; // the latest steer.run result
const charts = {};

function showError(err) {
  els.error.textContent = err ? (err.message ?? String(err)) : '';
  els.error.hidden = !err;
}

const pct = (v) => (v == null || Number.isNaN(v) ? '–' : `${(100 * v).toFixed(1)}%`);
const num = (v) => (v == null || Number.isNaN(v) ? '–' : v.toFixed(3));

function setCell(id, text, value) {
  const cell = document.querySelector(`[data-testid="${id}"]`);
  cell.textContent = text;
  if (value != null) cell.dataset.value = String(value);
}

/** The chosen concept: {key, name, labels} and its 0/1 label per biography. */
function concept() {
  const chosen = meta.concepts.find((c) => c.key === els.concept.value) ?? meta.concepts[0];
  return { ...chosen, z: meta.conceptLabels[chosen.key] };
}

// The typed numbers are checked here, each named next to its field, before the worker is
// asked: the facade's own errors ("invalid type: floating point `-3.0`, expected u64") are
// for programmers, and an empty field would otherwise read as 0.
const FIELD_CHECKS = [
  {
    input: els.seed,
    message: $('seed-error'),
    problem: (v) => (Number.isSafeInteger(v) && v >= 0 ? null : 'The split seed must be a whole number, 0 or more.'),
  },
  {
    input: els.reg,
    message: $('relative-reg-error'),
    applies: () => els.method.value === 'mean-cov',
    problem: (v) => (Number.isFinite(v) && v >= 0 ? null : 'The regularisation must be a number, 0 or more.'),
  },
];

/** Marks each typed number that is missing or out of range; true when all are usable. */
function checkFields() {
  let ok = true;
  for (const { input, message, applies, problem } of FIELD_CHECKS) {
    // A number field reads '' when empty or unreadable ("-", "1e"): never a number.
    const text = input.value.trim();
    const wrong = applies && !applies() ? null : problem(text === '' ? NaN : Number(text));
    message.textContent = wrong ?? '';
    message.hidden = !wrong;
    input.setAttribute('aria-invalid', String(Boolean(wrong)));
    ok &&= !wrong;
  }
  return ok;
}

function options() {
  return {
    concept: els.concept.value,
    method: els.method.value,
    relativeReg: Number(els.reg.value),
    applyTo: els.applyTo.value,
    seed: Number(els.seed.value), // checked by checkFields
  };
}

async function load() {
  els.progress.hidden = false;
  els.status.textContent = 'Loading the text encoder…';
  meta = await client.call('steer.load', { baseUrl: MODELS_URL, biosUrl: BIOS_URL }, {
    onProgress: (p) => {
      if (p.stage === 'download') {
        els.status.textContent = 'Downloading the text encoder…';
        els.progress.value = p.total ? p.loaded / p.total : 0;
      } else if (p.stage === 'embed') {
        els.status.textContent = `Embedding biographies: ${p.done} / ${p.total}`;
        els.progress.value = p.done / p.total;
      }
    },
  });
  els.progress.hidden = true;
  els.status.textContent = `${meta.n} biographies embedded (${meta.dim} dimensions).`;
  const chosen = els.concept.value;
  els.concept.replaceChildren(...meta.concepts.map((c) => new Option(c.name, c.key)));
  if (chosen) els.concept.value = chosen;
  embedded = true;
}

// A worker that crashed took the embeddings with it; the next action embeds them again.
client.addEventListener('lost', () => { embedded = false; });

async function run() {
  showError(null);
  if (!checkFields()) {
    els.status.textContent = 'Not run: correct the marked field first.';
    return;
  }
  els.run.disabled = true;
  try {
    if (!embedded) await load();
    els.status.textContent = 'Fitting and evaluating…';
    last = await client.call('steer.run', options());
    last.concept = concept();
    for (const el of document.querySelectorAll('.concept-name')) {
      el.textContent = el.tagName === 'OPTION' ? last.concept.name : last.concept.name[0].toUpperCase() + last.concept.name.slice(1);
    }
    renderResults(last.evaluation);
    renderCharts();
    els.status.textContent = `Done: ${last.evaluation.n_steered} rows steered.`;
    document.body.dataset.evaluated = 'true';
  } catch (err) {
    showError(err);
    els.status.textContent = '';
  } finally {
    els.run.disabled = false;
  }
}

function renderResults(e) {
  setCell('concept-chance', pct(e.concept_chance), e.concept_chance);
  setCell('concept-before', pct(e.concept_accuracy_before), e.concept_accuracy_before);
  setCell('concept-after', pct(e.concept_accuracy_after), e.concept_accuracy_after);
  setCell('task-chance', pct(e.task_chance), e.task_chance);
  setCell('task-before', pct(e.task_accuracy_before), e.task_accuracy_before);
  setCell('task-after', pct(e.task_accuracy_after), e.task_accuracy_after);
  setCell('gap-before', num(e.tpr_gap_rms_before), e.tpr_gap_rms_before);
  setCell('gap-after', num(e.tpr_gap_rms_after), e.tpr_gap_rms_after);
  els.note.textContent = `${e.n_train} training and ${e.n_test} held-out biographies; the ` +
    `steering function was fitted on the training rows only; probes are logistic regressions ` +
    `(C = 1) fitted on the training rows before and after steering. TPR-gap: ` +
    `TPR(${last.concept.labels[1]}) − TPR(${last.concept.labels[0]}) per profession, ` +
    `root mean square over the professions the "after" probe gets right at least once.`;
  const body = document.querySelector('[data-testid="gap-table"] tbody');
  body.replaceChildren();
  const before = new Map((e.tpr_gap_before?.classes ?? []).map((c) => [c.class, c.gap]));
  for (const c of e.tpr_gap_after?.classes ?? []) {
    const row = document.createElement('tr');
    for (const text of [meta.task.labels[c.class], num(before.get(c.class)), num(c.gap)]) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.append(cell);
    }
    body.append(row);
  }
}

function datasets(points) {
  const byConcept = els.colourBy.value === 'concept';
  const labels = byConcept ? last.concept.labels : meta.task.labels;
  const colours = byConcept ? CONCEPT_COLOURS : TASK_COLOURS;
  const classOf = byConcept ? last.concept.z : meta.y;
  return labels.map((label, c) => ({
    label,
    backgroundColor: colours[c % colours.length],
    pointRadius: 3,
    data: classOf.flatMap((k, i) => (k === c ? [{ x: points[2 * i], y: points[2 * i + 1] }] : [])),
  }));
}

function renderCharts() {
  if (!last) return;
  for (const [key, projection] of [['before', last.before], ['after', last.after]]) {
    const config = {
      type: 'scatter',
      data: { datasets: datasets(projection.points) },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { title: { display: true, text: `PC1 (${pct(projection.share[0])} of variance)` } },
          y: { title: { display: true, text: `PC2 (${pct(projection.share[1])} of variance)` } },
        },
        plugins: { legend: { position: 'bottom' } },
      },
    };
    charts[key]?.destroy();
    charts[key] = new Chart($(`chart-${key}`), config);
  }
}

function renderHits(key, hits, labels) {
  const list = document.querySelector(`[data-testid="hits-${key}"]`);
  list.replaceChildren();
  for (const hit of hits) {
    const item = document.createElement('li');
    item.dataset.z = String(hit.z);
    const tag = document.createElement('span');
    tag.className = `tag z${hit.z}`;
    tag.textContent = labels[hit.z];
    item.append(tag, `${hit.text} (${meta.task.labels[hit.y]}, ${hit.score.toFixed(3)})`);
    list.append(item);
  }
  const counts = [0, 1].map((z) => hits.filter((h) => h.z === z).length);
  document.querySelector(`[data-testid="mix-${key}"]`).textContent =
    `— ${counts[0]} ${labels[0]}, ${counts[1]} ${labels[1]}`;
}

async function search() {
  showError(null);
  if (!checkFields()) return;
  els.search.disabled = true;
  try {
    if (!embedded) await load();
    const { concept: key, method, relativeReg } = options();
    const { labels } = concept();
    const result = await client.call('steer.retrieve', { query: els.query.value, concept: key, method, relativeReg });
    renderHits('before', result.before, labels);
    renderHits('after', result.after, labels);
    document.body.dataset.searched = 'true';
  } catch (err) {
    showError(err);
  } finally {
    els.search.disabled = false;
  }
}

els.run.addEventListener('click', run);
els.search.addEventListener('click', search);
els.query.addEventListener('keydown', (e) => { if (e.key === 'Enter') search(); });
els.colourBy.addEventListener('change', renderCharts);
els.method.addEventListener('change', () => {
  els.reg.disabled = els.method.value !== 'mean-cov';
  if (document.querySelector('[aria-invalid="true"]')) checkFields();
});
// A field marked wrong is checked again as it is corrected.
for (const { input } of FIELD_CHECKS) {
  input.addEventListener('input', () => { if (input.getAttribute('aria-invalid') === 'true') checkFields(); });
}

(async () => {
  try {
    await load();
    els.run.disabled = false;
    els.search.disabled = false;
    document.body.dataset.ready = 'true';
    await run();
  } catch (err) {
    showError(err);
    els.status.textContent = '';
    els.progress.hidden = true;
  }
})();
