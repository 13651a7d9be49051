// Model collapse page: sliders → the worker's simulateCollapse → Chart.js lines (simulation
// as points, closed forms dashed). Runs again on every change, latest request wins. T's
// slider starts at d + 2 (the closed forms need T > d + 1), so the sliders cannot ask for a
// setting without them; the chart is shown only beside the numbers it was drawn from.
import { lineChart } from '../charts.js';
import { renderShell } from '../shell.js';
import { LatentlabClient } from '../client.js';
import { callWithGallery } from '../gallery-call.js';

renderShell('collapse');

const client = new LatentlabClient();
const fields = ['d', 't', 'sigma2', 'rounds', 'runs', 'testPoints'];
const $ = (id) => document.getElementById(id);
let chart = null;
let latest = 0;

function params() {
  return Object.fromEntries(fields.map((f) => [f, Number($(f).value)]));
}

/** T's slider starts at d + 2; a range input moves its value up to a raised minimum itself. */
function boundT() {
  $('t').min = String(Number($('d').value) + 2);
}

/** What is wrong with `p` in words, or null: only the typed field can be wrong. */
function invalid(p) {
  // (an empty or unreadable number field reads as '', so as 0)
  if (!Number.isInteger(p.testPoints) || p.testPoints < 1) {
    return 'Test points must be a whole number of at least 1.';
  }
  return null;
}

/** No numbers and no chart: what is on screen must belong to the settings shown. */
function clearResults() {
  chart?.destroy();
  chart = null;
  $('chart-box').hidden = true;
  for (const key of ['replace-sim', 'replace-theory', 'accumulate-sim', 'accumulate-theory']) {
    const el = document.querySelector(`[data-testid="${key}"]`);
    el.textContent = '–';
    delete el.dataset.value;
  }
}

function showError(err) {
  $('error').textContent = err ? (err.message ?? String(err)) : '';
  $('error').hidden = !err;
}

function series(label, values, colour, dashed) {
  return {
    label,
    data: values.map((v, i) => ({ x: i + 1, y: v })),
    borderColor: colour,
    backgroundColor: colour,
    borderDash: dashed ? [6, 4] : [],
    pointRadius: dashed ? 0 : 3,
    showLine: dashed,
  };
}

function draw(r) {
  $('chart-box').hidden = false;
  chart = lineChart($('chart'), chart, [
    series('replace (simulated)', r.replace, '#d6336c', false),
    series('replace (closed form)', r.replace_theory, '#d6336c', true),
    series('accumulate (simulated)', r.accumulate, '#1c7ed6', false),
    series('accumulate (closed form)', r.accumulate_theory, '#1c7ed6', true),
  ], { x: 'model-fitting round', y: 'test error' });
}

async function run() {
  const id = ++latest;
  boundT();
  const p = params();
  for (const f of fields) {
    const out = $(`${f}-out`);
    if (out) out.textContent = String(p[f]);
  }
  const problem = invalid(p);
  showError(problem ? new Error(problem) : null);
  if (problem) {
    clearResults();
    $('status').textContent = '';
    return;
  }
  $('status').textContent = `Simulating ${p.runs} runs × ${p.rounds} rounds…`;
  try {
    const r = await client.call('collapse.simulate', p);
    if (id !== latest) return;
    draw(r);
    const last = p.rounds - 1;
    const cell = (key, v) => {
      const el = document.querySelector(`[data-testid="${key}"]`);
      el.textContent = v.toFixed(4);
      el.dataset.value = String(v);
    };
    cell('replace-sim', r.replace[last]);
    cell('replace-theory', r.replace_theory[last]);
    cell('accumulate-sim', r.accumulate[last]);
    cell('accumulate-theory', r.accumulate_theory[last]);
    $('status').textContent = `${p.runs} runs, ${p.rounds} rounds.`;
    document.body.dataset.ready = 'true';
  } catch (err) {
    if (id !== latest) return;
    clearResults();
    showError(err);
    $('status').textContent = '';
    document.body.dataset.ready = 'true';
  }
}

// A typed number runs when it is complete, not for each of its digits.
for (const f of fields) $(f).addEventListener($(f).type === 'number' ? 'change' : 'input', run);
run();

// ------------------------------------------------------------- real data (extension)
let resampleChart = null;

async function resample() {
  const r = await callWithGallery(client, 'collapse.resample', { generations: 20, runs: 50 }, {
    button: $('resample'), progress: $('resample-progress'), status: $('resample-status'), onError: showError,
  });
  if (r) {
    const points = (values) => values.map((v, g) => ({ x: g, y: v }));
    $('resample-chart-box').hidden = false;
    resampleChart = lineChart($('resample-chart'), resampleChart, [
      { label: 'replace', data: points(r.replace_variance), borderColor: '#d6336c', backgroundColor: '#d6336c' },
      { label: 'accumulate', data: points(r.accumulate_variance), borderColor: '#1c7ed6', backgroundColor: '#1c7ed6' },
    ], { x: 'generation', y: 'total variance / real data' });
    const last = r.replace_variance.length - 1;
    const status = $('resample-status');
    status.textContent = `after ${last} generations: replace keeps ${(100 * r.replace_variance[last]).toFixed(1)}% ` +
      `of the variance, accumulate ${(100 * r.accumulate_variance[last]).toFixed(1)}%`;
    status.dataset.replace = String(r.replace_variance[last]);
    status.dataset.accumulate = String(r.accumulate_variance[last]);
  }
}

$('resample').addEventListener('click', resample);
