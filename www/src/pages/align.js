// Representation alignment page: the worker embeds the items once, then measures every metric
// for the chosen pair and k, the mutual-kNN curve over k against chance (Chart.js), and the
// items whose neighbourhoods agree or disagree most.
import { lineChart } from '../charts.js';
import { renderShell } from '../shell.js';
import { LatentlabClient } from '../client.js';
import { callWithGallery } from '../gallery-call.js';
import { verifiedPicture } from '../fetch-data.js';

renderShell('align');

const client = new LatentlabClient();
const $ = (id) => document.getElementById(id);
let chart = null;

function showError(err) {
  $('error').textContent = err ? (err.message ?? String(err)) : '';
  $('error').hidden = !err;
}

const fmt = (v) => (v == null || Number.isNaN(v) ? '–' : v.toFixed(3));

/**
 * Each metric in words: its name, what it measures (src/core/align/ has the definitions, after
 * the paper's code), its range for k neighbours and d canonical directions, and why it has no
 * chance level where it has none (src/core/align/chance.rs derives the others).
 */
const METRICS = {
  mutual_knn: {
    name: 'Mutual nearest neighbours',
    meaning: () => 'The share of each item\'s k nearest neighbours that both representations agree on, averaged (the paper\'s metric).',
    range: () => '0 to 1',
  },
  cycle_knn: {
    name: 'Neighbours that lead back',
    meaning: () => 'The share of items with a neighbour, in the second representation, that has the item among its neighbours in the first.',
    range: () => '0 to 1',
  },
  lcs_knn: {
    name: 'Neighbours in the same order',
    meaning: () => 'How many of the k ranked neighbours two lists have in the same order (longest common subsequence), averaged: a count, not a share.',
    range: (k) => `0 to k = ${k}`,
  },
  edit_distance_knn: {
    name: 'Edit distance of neighbour lists',
    meaning: () => '1 − the edits (insert, delete, replace) that turn one ranked neighbour list into the other, per neighbour, averaged.',
    range: () => '0 to 1',
    noChance: 'No formula gives it: the distance depends on where the shared neighbours sit in the lists.',
  },
  cka: {
    name: 'Centred kernel alignment (CKA)',
    meaning: () => 'How alike the similarities between all pairs of items are in the two (linear kernels); with few items even unrelated ones score high.',
    range: () => '0 to 1',
  },
  unbiased_cka: {
    name: 'Unbiased CKA',
    meaning: () => 'CKA with an estimate that does not grow with fewer items: 0 on average for unrelated representations.',
    range: () => '−1 to 1',
  },
  cknna: {
    name: 'CKA over nearest neighbours (CKNNA)',
    meaning: () => 'Unbiased CKA counting only pairs of items that are among each other\'s k nearest neighbours in both representations.',
    range: () => 'not bounded; usually −1 to 1',
    noChance: 'No formula gives it: the pairs it counts change with the pairing.',
  },
  svcca: {
    name: 'Singular vector CCA (SVCCA)',
    meaning: (d) => `The mean correlation of the best-matched directions among each representation's top ${d} (singular vectors, then canonical correlation).`,
    range: () => '0 to 1',
    noChance: 'No formula gives it: it depends on how the data spread over their directions.',
  },
};

/** A table cell; `label` names the column where a phone shows the row as a block. */
function cell(label, ...content) {
  const td = document.createElement('td');
  if (label) td.dataset.label = label;
  td.append(...content);
  return td;
}

function renderMetrics(r) {
  const body = document.querySelector('[data-testid="metrics"] tbody');
  body.replaceChildren();
  for (const s of r.scores) {
    const about = METRICS[s.metric];
    const row = document.createElement('tr');
    row.dataset.metric = s.metric;
    row.dataset.score = String(s.score);
    row.dataset.chance = String(s.chance);
    const name = document.createElement('strong');
    name.className = 'metric-name';
    name.textContent = about.name;
    const meaning = document.createElement('span');
    meaning.className = 'metric-meaning';
    meaning.textContent = about.meaning(s.cca_dim);
    const id = document.createElement('code');
    id.className = 'metric-id';
    id.textContent = s.metric;
    id.title = 'the name in the paper\'s code and in `latentlab align --metric`';
    // A count out of k reads as one: "2.083 of 3", beside shares of 1.
    const ofK = s.metric === 'lcs_knn' ? ` of ${r.k}` : '';
    const chance = s.chance == null ? 'no fixed chance level' : `${fmt(s.chance)}${ofK}`;
    const chanceCell = cell('chance', chance);
    if (s.chance == null) {
      chanceCell.className = 'no-chance';
      chanceCell.title = about.noChance ?? '';
    }
    row.append(cell(null, name, ' ', id, meaning), cell('score', `${fmt(s.score)}${ofK}`), cell('range', about.range(r.k)), chanceCell);
    body.append(row);
  }
  chart = lineChart($('curve'), chart, [
    { label: `mutual kNN: ${r.names[0]} vs ${r.names[1]}`, data: r.curve.map((c) => ({ x: c.k, y: c.score })), borderColor: '#1c7ed6', backgroundColor: '#1c7ed6' },
    { label: 'chance k/(n−1)', data: r.curve.map((c) => ({ x: c.k, y: c.chance })), borderColor: '#868e96', borderDash: [6, 4], pointRadius: 0 },
  ], { x: 'k', y: 'mutual kNN', yMax: 1 });
}

function renderItems(r) {
  const sorted = [...r.items].sort((a, b) => b.agreement - a.agreement || a.index - b.index);
  const fill = (id, list) => {
    const ol = document.querySelector(`[data-testid="${id}"]`);
    ol.replaceChildren();
    for (const item of list) {
      const li = document.createElement('li');
      li.dataset.agreement = String(item.agreement);
      if (item.file) {
        const img = document.createElement('img');
        img.className = 'thumb';
        verifiedPicture(`./gallery/${encodeURIComponent(item.file)}`).then((src) => { img.src = src; }, showError);
        img.alt = '';
        li.append(img);
      }
      li.append(`${item.label} — ${Math.round(item.agreement * r.k)} of ${r.k} neighbours shared`);
      ol.append(li);
    }
  };
  fill('agree', sorted.slice(0, 3));
  fill('disagree', sorted.slice(-3).reverse());
}

/** The k field as a whole number, or why it cannot be used (an empty field is not k = 0). */
function readK() {
  const field = $('k');
  const most = field.max ? Number(field.max) : null;
  const choose = most ? `a whole number from 1 to ${most}` : 'a whole number from 1 to n − 1';
  // A number field's value is '' when it is empty or holds no number.
  if (field.value.trim() === '') return { error: `Enter k, the number of neighbours: ${choose}.` };
  const k = Number(field.value);
  if (!Number.isInteger(k) || k < 1 || (most && k > most)) {
    return { error: `k = ${field.value} cannot be used here: choose ${choose}${most ? ` (there are ${most + 1} items)` : ''}.` };
  }
  return { k };
}

async function measure() {
  showError(null);
  const { k, error } = readK();
  if (error) {
    showError(new Error(error));
    return;
  }
  const backend = new URLSearchParams(location.search).get('backend') ?? 'auto';
  const r = await callWithGallery(client, 'align.measure', { pair: $('pair').value, k, backend }, {
    button: $('measure'), progress: $('progress'), status: $('status'), onError: showError,
  });
  if (!r) return;
  renderMetrics(r);
  renderItems(r);
  // k is bounded by this pair's items: k < n.
  $('k').max = String(r.n - 1);
  $('k-hint').textContent = `1 to ${r.n - 1} for these ${r.n} items`;
  const where = r.backend === 'webgpu' ? `webgpu (${r.adapter})` : 'cpu';
  $('status').textContent = `${r.n} items, k = ${r.k} · neighbour search: ${where}${r.fallback ? ` (${r.fallback})` : ''}`;
  document.body.dataset.backend = r.backend;
  document.body.dataset.measured = String(Number(document.body.dataset.measured ?? 0) + 1);
}

$('measure').addEventListener('click', measure);
$('pair').addEventListener('change', () => {
  // The new pair's size is known once it is measured.
  $('k').removeAttribute('max');
  $('k-hint').textContent = '1 to n − 1 for n items';
  measure();
});
measure();
