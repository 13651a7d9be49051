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

function renderMetrics(r) {
  const body = document.querySelector('[data-testid="metrics"] tbody');
  body.replaceChildren();
  for (const s of r.scores) {
    const row = document.createElement('tr');
    row.dataset.metric = s.metric;
    row.dataset.score = String(s.score);
    for (const text of [s.metric, fmt(s.score), s.chance == null ? '' : fmt(s.chance)]) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.append(cell);
    }
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

async function measure() {
  showError(null);
  const backend = new URLSearchParams(location.search).get('backend') ?? 'auto';
  const r = await callWithGallery(client, 'align.measure', { pair: $('pair').value, k: Number($('k').value), backend }, {
    button: $('measure'), progress: $('progress'), status: $('status'), onError: showError,
  });
  if (!r) return;
  renderMetrics(r);
  renderItems(r);
  const where = r.backend === 'webgpu' ? `webgpu (${r.adapter})` : 'cpu';
  $('status').textContent = `${r.n} items, k = ${r.k} · neighbour search: ${where}${r.fallback ? ` (${r.fallback})` : ''}`;
  document.body.dataset.backend = r.backend;
  document.body.dataset.measured = String(Number(document.body.dataset.measured ?? 0) + 1);
}

$('measure').addEventListener('click', measure);
$('pair').addEventListener('change', measure);
measure();
