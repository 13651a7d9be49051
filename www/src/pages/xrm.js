// XRM page: the composited birds (www/public/xrm/, written by `latentlab xrm data --thumbnails`
// at build time: pictures.json, thumbnails and the encoder's features as .npy) → the worker's
// xrmCompare (XRM's environments per seed, the accuracy table) → the discovered groups shown
// as galleries of the training pictures.
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
    showTable(result);
    showGroups();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    $('status').textContent = `${options.seeds} seed(s), ${options.steps} steps, ${result.dim} ` +
      `dimensions${options.whiten ? ' (whitened)' : ''} · ${seconds} s`;
    document.body.dataset.ran = 'true';
  } catch (err) {
    showError(err);
    $('status').textContent = '';
  } finally {
    $('run').disabled = false;
  }
}

for (const id of ['seeds', 'steps']) {
  $(id).addEventListener('input', () => { $(`${id}-out`).textContent = $(id).value; });
}
$('run').addEventListener('click', run);
$('seed-view').addEventListener('change', showGroups);

try {
  data = await loadData();
  showSamples();
  $('run').disabled = false;
  document.body.dataset.loaded = 'true';
} catch (err) {
  showError(err);
  $('data-status').textContent = '';
}
