// XRM page: the composited birds (www/public/xrm/, written by `latentlab xrm data --thumbnails`
// at build time: pictures.json, thumbnails and the encoder's features as .npy) → the worker's
// xrmCompare (XRM's environments per seed, the accuracy table) → the discovered groups shown
// as galleries of the training pictures. Its settings come from xrm/selected.json (`latentlab
// xrm select` at build time: the reference's phase-1 rule, largest final flip rate at seed 0),
// and each seed's flip-rate history is drawn to show what the seed changes.
import { lineChart } from '../charts.js';
import { renderShell } from '../shell.js';
import { LatentlabClient } from '../client.js';
import { parseNpy } from '../npy.js';
import { fetchVerified, verifiedPicture } from '../fetch-data.js';

renderShell('xrm');

const client = new LatentlabClient();
const $ = (id) => document.getElementById(id);
const BASE = './xrm/';
const SPLITS = ['train', 'val', 'test'];
const KIND = ['land bird', 'water bird'];
const PLACE = ['land', 'water'];
const PER_GROUP = 48;
let data = null;
let result = null;
let flipChart = null;
const SEED_COLOURS = ['#1c7ed6', '#d6336c', '#2b8a3e', '#e8590c', '#7048e8', '#0c8599', '#c2255c', '#5c940d', '#862e9c', '#495057'];

function showError(err) {
  $('error').textContent = err ? (err.message ?? String(err)) : '';
  $('error').hidden = !err;
}

async function fetchOk(url) {
  const response = await fetchVerified(url);
  if (!response.ok) {
    throw new Error(`${url}: HTTP ${response.status} — the XRM pictures are made when the site is ` +
      'built, from Debian\'s tuxpaint-stamps-default and tuxpaint-data (scripts/demo installs them)');
  }
  return response;
}

/** pictures.json and each split's features, as `{ meta, splits: { train: { x, dim, pictures } } }`. */
async function loadData() {
  const meta = await (await fetchOk(`${BASE}pictures.json`)).json();
  const splits = {};
  for (const name of SPLITS) {
    const { data: x, shape } = parseNpy(await (await fetchOk(`${BASE}${name}_x.npy`)).arrayBuffer(), `${name}_x.npy`);
    const pictures = meta.pictures[name];
    if (shape.length !== 2 || shape[0] !== pictures.length) {
      throw new Error(`${name}_x.npy has shape [${shape}] for ${pictures.length} pictures`);
    }
    splits[name] = { x, dim: shape[1], pictures };
  }
  return { meta, splits };
}

/** xrm/selected.json (null when the build did not write it: the hand defaults stay). */
async function loadSelection() {
  const response = await fetchVerified(`${BASE}selected.json`);
  if (!response.ok) return null;
  return response.json();
}

const pcaName = (p) => (p === 0 ? `all ${data.splits.train.dim}` : String(p));

function showSelection(selection) {
  if (!selection) {
    $('selection-text').textContent = 'xrm/selected.json is missing from this build, so these ' +
      'are fixed defaults, not chosen by the reference\'s rule (scripts/lib.sh writes it with ' +
      '`latentlab xrm select`).';
    return;
  }
  const chosen = selection.selected;
  $('pca').value = String(chosen.pca);
  $('whiten').checked = chosen.whiten;
  $('twin-steps').value = String(chosen.steps);
  $('twin-steps-out').textContent = String(chosen.steps);
  syncWhiten();
  const n = selection.candidates.length;
  $('selection-summary').textContent = `How these settings were chosen: ${pcaName(chosen.pca)} ` +
    `components${chosen.whiten ? ', whitened' : ''}, ${chosen.steps} twin steps (the largest final ` +
    `flip rate of ${n} runs at seed ${selection.seed})`;
  $('selection-text').textContent = 'As the reference selects phase 1 (utils.find_best_hparams_comb): ' +
    `every combination below ran the twins at seed ${selection.seed}; the one whose labels ` +
    'flipped most by the end is kept; a run that puts a whole class in one environment ' +
    '("degenerate") counts as 0; the first wins ties. The rule uses no group labels, so it ' +
    'need not pick the setting with the best test worst-group accuracy: try the others with ' +
    'the controls above.';
  $('selection-rows').replaceChildren(...selection.candidates.map((c) => {
    const tr = document.createElement('tr');
    const isChosen = c.pca === chosen.pca && c.whiten === chosen.whiten && c.steps === chosen.steps;
    if (isChosen) tr.classList.add('chosen');
    for (const text of [pcaName(c.pca), c.whiten ? 'yes' : 'no', String(c.steps),
      `${(c.flip_rate * 100).toFixed(2)}%`, c.degenerate ? 'yes (counts 0)' : 'no']) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
  document.body.dataset.selected = JSON.stringify(chosen);
}

/** Whitening scales principal components: with all features there are none to scale. */
function syncWhiten() {
  const all = $('pca').value === '0';
  $('whiten').disabled = all;
  if (all) $('whiten').checked = false;
}

function figure(picture, caption) {
  const fig = document.createElement('figure');
  if (picture.y !== picture.place) fig.classList.add('minority');
  const img = document.createElement('img');
  verifiedPicture(`${BASE}${picture.file}`).then((src) => { img.src = src; }, showError);
  img.alt = `${picture.species.split('/').pop().replace(/_/g, ' ')} on ${picture.background.replace(/\.jpg$/, '').replace(/_/g, ' ')}`;
  img.loading = 'lazy';
  img.width = 96;
  img.height = 96;
  const cap = document.createElement('figcaption');
  cap.textContent = caption ?? img.alt;
  cap.title = img.alt;
  fig.append(img, cap);
  return fig;
}

function showSamples() {
  const train = data.splits.train.pictures;
  // the first pictures of each of the four (bird, background) groups, minority first
  const groups = [[1, 0], [0, 1], [1, 1], [0, 0]];
  const shown = groups.flatMap(([y, place]) =>
    train.filter((p) => p.y === y && p.place === place).slice(0, 6));
  $('samples').replaceChildren(...shown.map((p) => figure(p, `${KIND[p.y]}, ${PLACE[p.place]}`)));
  const minority = train.filter((p) => p.y !== p.place).length;
  const s = data.meta.splits;
  $('data-status').textContent = `${s.train.n} training pictures (${minority} against the ` +
    `correlation), ${s.val.n} validation, ${s.test.n} test; features: ${data.meta.features}, ` +
    `${data.splits.train.dim} dimensions.`;
}

function split(name) {
  const { x, pictures } = data.splits[name];
  return {
    x,
    y: Uint32Array.from(pictures, (p) => p.y),
    attribute: Uint32Array.from(pictures, (p) => p.place),
  };
}

const METHODS = [
  ['erm', 'ERM', 'none'],
  ['groupdro_classes', 'GroupDRO', 'classes only'],
  ['groupdro_xrm', 'GroupDRO + XRM', 'class × discovered environment'],
  ['groupdro_true', 'GroupDRO (oracle)', 'class × true background'],
];

const pm = ({ mean, std }) => `${mean.toFixed(3)} ± ${std.toFixed(3)}`;

function showTable(r) {
  $('rows').replaceChildren(...METHODS.map(([key, name, groups]) => {
    const tr = document.createElement('tr');
    tr.dataset.method = key;
    tr.dataset.worst = String(r.table[key].test_worst_group.mean);
    for (const text of [name, groups, pm(r.table[key].test_worst_group), pm(r.table[key].test_average)]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
  const rec = r.recovery;
  $('recovery').textContent = `Recovery of the true minority by XRM's environment: training ` +
    `precision ${pm(rec.train_precision)}, recall ${pm(rec.train_recall)}; validation precision ` +
    `${pm(rec.val_precision)}, recall ${pm(rec.val_recall)} (over ${r.runs.length} seed(s)).`;
  $('seed-view').replaceChildren(...r.runs.map((run) => {
    const o = document.createElement('option');
    o.value = String(run.seed);
    o.textContent = `${run.seed} (flip rate ${(run.environments.flip_rate * 100).toFixed(1)}%)`;
    return o;
  }));
}

/** Each seed's flip-rate history, and in words whether the seeds end in different groups. */
function showSeeds(r) {
  const runs = r.runs;
  // the core records the flip rate after every 10 steps and after the last
  const steps = (i, history) => (i + 1 === history.length && r.twinSteps % 10 !== 0 ? r.twinSteps : 10 * (i + 1));
  $('flip-box').hidden = false;
  flipChart = lineChart($('flip-chart'), flipChart, runs.map((run, k) => ({
    label: `seed ${run.seed}`,
    data: run.environments.flip_rates.map((v, i, h) => ({ x: steps(i, h), y: 100 * v })),
    borderColor: SEED_COLOURS[k % SEED_COLOURS.length],
    backgroundColor: SEED_COLOURS[k % SEED_COLOURS.length],
    pointRadius: 0,
  })), { x: 'training step', y: 'training labels flipped (%)' });
  const note = $('seed-note');
  const n = data.splits.train.pictures.length;
  if (runs.length < 2) {
    note.textContent = 'One seed: its flip rate over training. Run two or more seeds to compare them.';
    return;
  }
  // where the histories are furthest apart, and how many pictures' environments differ at the end
  const histories = runs.map((run) => run.environments.flip_rates);
  let widest = { spread: 0, at: 0 };
  histories[0].forEach((_, i) => {
    const values = histories.map((h) => h[i]);
    const spread = Math.max(...values) - Math.min(...values);
    if (spread > widest.spread) widest = { spread, at: i };
  });
  const differ = data.splits.train.pictures.filter((_, i) =>
    runs.some((run) => run.environments.train[i] !== runs[0].environments.train[i])).length;
  const finals = runs.map((run) => run.environments.flip_rate);
  const finalSpread = Math.max(...finals) - Math.min(...finals);
  note.dataset.historiesDiffer = String(widest.spread > 0);
  note.dataset.picturesThatDiffer = String(differ);
  const pct = (v) => `${(100 * v).toFixed(1)}%`;
  const start = widest.spread > 0
    ? `The seeds do reach XRM: their flip rates differ most at step ${steps(widest.at, histories[0])} ` +
      `(${histories.map((h) => pct(h[widest.at])).join(', ')}). `
    : 'The seeds gave identical flip-rate histories. ';
  const end = differ === 0
    ? `They end in the same labelling: none of the ${n} training pictures is placed in a ` +
      `different environment by another seed, so every seed gives the same groups and the ` +
      `table's ± is 0. The twins' heads start at zero and train on the full batch; once the ` +
      `held-out twin is confident, a label flips with probability near 1, so the labels follow ` +
      `its predictions and both twins settle on the same boundary whatever coins the seed drew.`
    : `They end in different labellings: ${differ} of ${n} training pictures are placed in a ` +
      `different environment by some seed (final flip rates ${finals.map(pct).join(', ')}, ` +
      `spread ${pct(finalSpread)}).`;
  note.textContent = start + end;
}

function showGroups() {
  if (!result) return;
  const run = result.runs.find((r) => String(r.seed) === $('seed-view').value) ?? result.runs[0];
  const train = data.splits.train.pictures;
  const sections = [];
  for (const y of [1, 0]) {
    for (const env of [1, 0]) {
      const members = train.filter((p, i) => p.y === y && run.environments.train[i] === env);
      const minority = members.filter((p) => p.y !== p.place).length;
      const section = document.createElement('section');
      section.className = 'xrm-group';
      section.dataset.y = String(y);
      section.dataset.env = String(env);
      section.dataset.count = String(members.length);
      const h = document.createElement('h3');
      h.textContent = `${KIND[y]}s, ${env ? 'flagged by XRM (a twin got them wrong)' : 'not flagged'}: ` +
        `${members.length} pictures, ${minority} truly on the other background` +
        (members.length > PER_GROUP ? ` (first ${PER_GROUP} shown)` : '');
      const gallery = document.createElement('div');
      gallery.className = 'gallery xrm-gallery';
      gallery.append(...members.slice(0, PER_GROUP).map((p) => figure(p)));
      section.append(h, gallery);
      sections.push(section);
    }
  }
  $('groups').replaceChildren(...sections);
}

async function run() {
  const options = {
    seeds: Number($('seeds').value),
    steps: Number($('steps').value),
    twinSteps: Number($('twin-steps').value),
    pca: Number($('pca').value),
    whiten: $('whiten').checked,
  };
  $('run').disabled = true;
  showError(null);
  const started = performance.now();
  $('status').textContent = 'Training…';
  try {
    result = await client.call('xrm.compare', {
      train: split('train'), validation: split('val'), test: split('test'),
      dim: data.splits.train.dim, options,
    }, {
      onProgress: ({ done, total }) => {
        $('status').textContent = `Training ${done} of ${total} (ERM, GroupDRO over classes, ` +
          `GroupDRO on true groups, then XRM + GroupDRO per seed)…`;
      },
    });
    result.twinSteps = options.twinSteps;
    showTable(result);
    showSeeds(result);
    showGroups();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    $('status').textContent = `${options.seeds} seed(s), ${options.twinSteps} twin steps, ` +
      `${options.steps} training steps, ${result.dim} dimensions` +
      `${options.whiten ? ' (whitened)' : ''} · ${seconds} s`;
    document.body.dataset.ran = 'true';
  } catch (err) {
    showError(err);
    $('status').textContent = '';
  } finally {
    $('run').disabled = false;
  }
}

for (const id of ['seeds', 'steps', 'twin-steps']) {
  $(id).addEventListener('input', () => { $(`${id}-out`).textContent = $(id).value; });
}
$('run').addEventListener('click', run);
$('pca').addEventListener('change', syncWhiten);
$('seed-view').addEventListener('change', showGroups);

try {
  data = await loadData();
  showSamples();
  showSelection(await loadSelection());
  $('run').disabled = false;
  document.body.dataset.loaded = 'true';
} catch (err) {
  showError(err);
  $('data-status').textContent = '';
}
