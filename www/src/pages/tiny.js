// tinyBenchmarks page: the response matrix of 100 retrieval configurations × captioned stamps
// (www/public/tiny/, made by scripts/data/make_tiny_responses.sh) → the worker's tinyHoldout
// (error against the number of anchors, Chart.js) and fitTinyBenchmark (the 30 anchors, shown
// with their pictures where the site build has the stamps).
import { lineChart } from '../charts.js';
import { renderShell } from '../shell.js';
import { LatentlabClient } from '../client.js';
import { fetchVerified, verifiedPicture } from '../fetch-data.js';

renderShell('tiny');

const client = new LatentlabClient();
const $ = (id) => document.getElementById(id);
const DATA_URL = './tiny/retrieval-responses.json';
const STAMPS_URL = './stamps/';
const SIZES = [10, 30, 60, 100];
let chart = null;
let data = null;
let choosingAnchors = false; // the worker runs one fit at a time: an evaluation waits for it

function showError(err) {
  $('error').textContent = err ? (err.message ?? String(err)) : '';
  $('error').hidden = !err;
}

/**
 * A progress callback for the worker's fits: the bar at done/total and, beside it, what is
 * being computed (the fits take tens of seconds; the facade reports every 100 IRT epochs).
 */
function showProgress(prefix) {
  const row = $(`${prefix}-progress-row`);
  const bar = $(`${prefix}-progress`);
  const step = $(`${prefix}-step`);
  row.hidden = false;
  bar.value = 0;
  step.textContent = 'starting…';
  return {
    onProgress: ({ done, total, stage }) => {
      bar.value = total ? done / total : 0;
      step.textContent = `${stage[0].toUpperCase()}${stage.slice(1)} · step ${done} of ${total}`;
      Object.assign(step.dataset, { done: String(done), total: String(total), stage });
    },
    hide: () => { row.hidden = true; },
  };
}

async function loadData() {
  if (data) return data;
  const response = await fetchVerified(DATA_URL);
  if (!response.ok) throw new Error(`${DATA_URL}: HTTP ${response.status} ${response.statusText}`);
  data = await response.json();
  return data;
}

/** Captions by stamp name, when the site build copied the stamps (else an empty map). */
async function captions() {
  try {
    const response = await fetchVerified(`${STAMPS_URL}captions.json`);
    if (!response.ok) return new Map();
    const { items } = await response.json();
    return new Map(items.map((i) => [i.file, i.caption]));
  } catch (err) {
    // The anchors are still listed, by file name; say why they have no captions or pictures.
    showError(err);
    return new Map();
  }
}

const SERIES = [
  ['random', 'random sample, plain mean', '#868e96', true],
  ['random_gpirt', 'random sample + gp-IRT', '#adb5bd', false],
  ['irt', 'IRT anchors (irt)', '#1c7ed6', true],
  ['pirt', 'IRT anchors + p-IRT', '#7048e8', false],
  ['gpirt', 'IRT anchors + gp-IRT', '#d6336c', false],
];

function draw(report) {
  $('chart-box').hidden = false;
  $('table').hidden = false;
  chart = lineChart($('chart'), chart, SERIES.map(([key, label, colour, dashed]) => ({
    label,
    data: report.rows.map((r) => ({ x: r.anchors, y: r[key] })),
    borderColor: colour,
    backgroundColor: colour,
    borderDash: dashed ? [6, 4] : [],
    pointRadius: 3,
  })), { x: 'anchor items', y: 'mean absolute error of the accuracy' });
  $('rows').replaceChildren(...report.rows.map((r) => {
    const tr = document.createElement('tr');
    tr.dataset.anchors = String(r.anchors);
    for (const v of [r.anchors, r.random, r.random_gpirt, r.irt, r.pirt, r.gpirt]) {
      const td = document.createElement('td');
      td.textContent = Number.isInteger(v) ? String(v) : v.toFixed(4);
      tr.append(td);
    }
    tr.dataset.random = String(r.random);
    tr.dataset.gpirt = String(r.gpirt);
    return tr;
  }));
}

async function evaluate() {
  const seeds = Number($('seeds').value);
  const splitSeed = Number($('split').value);
  $('seeds-out').textContent = String(seeds);
  $('split-out').textContent = String(splitSeed);
  $('run').disabled = true;
  showError(null);
  $('status').textContent = 'Evaluating: an IRT model is fitted on three quarters of the ' +
    'configurations, then the held-out quarter is estimated from anchor sets of each size…';
  const started = performance.now();
  const progress = showProgress('eval');
  if (choosingAnchors) $('eval-step').textContent = 'waiting for the anchors below to be chosen first…';
  try {
    const d = await loadData();
    const report = await client.call('tiny.holdout', {
      data: d, options: { anchors: SIZES, seeds, splitSeed },
    }, { onProgress: progress.onProgress });
    draw(report);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    $('status').textContent = `${report.test_models.length} held-out configurations of ` +
      `${d.responses.length}, ${report.kept_items.length} informative stamps of ${d.items.length}, ` +
      `IRT dimension ${report.dim} (chosen by validation on the ${d.responses.length - report.test_models.length} ` +
      `training configurations), ${seeds} anchor draw(s) per size · ${seconds} s`;
    $('status').dataset.dim = String(report.dim);
    document.body.dataset.evaluated = 'true';
  } catch (err) {
    showError(err);
    $('status').textContent = '';
  } finally {
    progress.hide();
    $('run').disabled = false;
  }
}

async function showAnchors() {
  const progress = showProgress('anchor');
  choosingAnchors = true;
  try {
    const d = await loadData();
    $('anchor-status').textContent = 'Choosing anchors: an IRT model is fitted on all ' +
      `${d.responses.length} configurations (its dimension chosen by validation), then its items are clustered…`;
    const fit = await client.call('tiny.fit', { data: d, options: { anchors: 30 } }, { onProgress: progress.onProgress });
    const names = await captions();
    const list = $('anchors');
    list.replaceChildren(...fit.anchors.map((a, k) => {
      const name = d.items[fit.kept_items[a]];
      const li = document.createElement('li');
      li.dataset.item = name;
      const caption = names.get(name);
      if (caption !== undefined) {
        const img = document.createElement('img');
        verifiedPicture(`${STAMPS_URL}${encodeURIComponent(name)}`).then((src) => { img.src = src; }, showError);
        img.alt = caption;
        img.width = 64;
        img.height = 64;
        li.append(img);
      }
      const text = document.createElement('span');
      text.textContent = `${caption ?? name.replace(/__/g, '/')} · weight ${(fit.anchor_weights[k] * 100).toFixed(1)}%`;
      li.append(text);
      return li;
    }));
    $('anchor-status').textContent = `${fit.anchors.length} anchors by k-means on the items' ` +
      `IRT parameters (dimension ${fit.dim}, chosen by validation on all ${d.responses.length} configurations); ` +
      `gp-IRT's λ = ${fit.gp_lambda.toFixed(3)}.`;
    $('anchor-status').dataset.dim = String(fit.dim);
    document.body.dataset.anchors = 'true';
  } catch (err) {
    showError(err);
    $('anchor-status').textContent = '';
  } finally {
    choosingAnchors = false;
    progress.hide();
  }
}

$('run').addEventListener('click', evaluate);
for (const id of ['seeds', 'split']) {
  $(id).addEventListener('input', () => { $(`${id}-out`).textContent = $(id).value; });
}
document.body.dataset.ready = 'true';
showAnchors();
