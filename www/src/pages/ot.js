// Optimal transport page: draggable 2-D clouds solved in the worker as they move (one solve
// at a time, the newest positions next), three clouds with the M3G value, and the gallery's
// photo ↔ caption plan as a heat map. Coordinates live in the SVG's 600 × 360 box and are
// scaled to [-3, 3] × [-1.8, 1.8] for the solver, so ε means the same thing whatever the
// screen size.
import { renderShell } from '../shell.js';
import { LatentlabClient } from '../client.js';
import { callWithGallery } from '../gallery-call.js';

renderShell('ot');
const client = new LatentlabClient();
const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const SCALE = 100;
const COLOURS = ['#d6336c', '#1c7ed6', '#2f9e44'];
const PARAMS = new URLSearchParams(window.location.search);
/** `?backend=cpu|gpu` forces a backend for the two- and three-cloud solvers (default: auto). */
const BACKEND = PARAMS.get('backend') ?? 'auto';
/** `?maxIterations=N` caps every solve, to see what one that stops short looks like. */
const MAX_ITERATIONS = PARAMS.has('maxIterations') ? Number(PARAMS.get('maxIterations')) : undefined;

function showError(err) {
  $('error').textContent = err ? (err.message ?? String(err)) : '';
  $('error').hidden = !err;
}

/**
 * `solve` run one at a time, each reading the inputs as they are when it starts: requests made
 * meanwhile (a drag makes one per pointer move) fold into a single next run, so work never
 * piles up behind the pointer and the last answer drawn is for the last positions. Answers
 * come back in request order, so none can overwrite a newer one. `result` is aria-busy (and
 * says "solving…", see style.css) until the newest request is answered or has failed.
 */
function oneAtATime(result, solve) {
  let running = false;
  let again = false;
  return async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    result.setAttribute('aria-busy', 'true');
    do {
      again = false;
      try {
        await solve();
      } catch (err) {
        if (!again) showError(err); // else the next run's answer or error replaces it
      }
    } while (again);
    running = false;
    result.setAttribute('aria-busy', 'false');
  };
}

/** The iterations, or plainly that the solve stopped short and how far its marginals were off. */
const iterations = (r) => (r.converged ? `${r.n_iters} iterations` : `did not converge in ` +
  `${r.n_iters} iterations (marginal error ${Number(r.marginal_error).toExponential(1)})`);

/** Why the CPU solved instead of WebGPU, in a reader's words (the solver's are in the title). */
const FALLBACKS = [
  [/navigator\.gpu|no (GPU|WebGPU) adapter/, 'this browser offers no WebGPU'],
  [/refused a device/, 'the GPU would not open a device'],
  [/\blost\b/, 'the GPU was lost mid-solve'],
];

/** "WebGPU (name)" or "CPU (why)", the solver's own report in its title. The adapter reads
 * "name (api, type)": SwiftShader in headless Chromium has no name, and type "cpu" is software. */
function backendLabel(r) {
  const span = document.createElement('span');
  if (r.backend === 'webgpu') {
    const [, name, type] = /^(.*) \([^,]*, (\w+)\)$/.exec(r.adapter ?? '') ?? [];
    const what = [name?.trim(), type === 'cpu' && 'software adapter'].filter(Boolean).join(', ');
    span.textContent = `WebGPU (${what || 'unnamed adapter'})`;
    span.title = r.adapter ?? '';
  } else {
    const why = FALLBACKS.find(([re]) => re.test(r.fallback ?? ''))?.[1] ?? 'the GPU failed mid-solve';
    span.textContent = r.fallback ? `CPU (${why})` : 'CPU';
    span.title = r.fallback ?? '';
  }
  return span;
}

const epsilonOf = (input) => 10 ** Number(input.value);
const toSolver = (pts) => pts.flatMap(([px, py]) => [(px - 300) / SCALE, (py - 180) / SCALE]);

function el(name, attrs) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** Deterministic starting clouds (a little jitter so no two points coincide). */
function ring(count, cx, cy, r, phase) {
  return Array.from({ length: count }, (_, i) => {
    const t = phase + (2 * Math.PI * i) / count;
    return [cx + r * Math.cos(t) + 7 * Math.sin(3 * i), cy + 0.8 * r * Math.sin(t)];
  });
}

/** Makes the circles of `clouds` draggable inside `svg`; `onMove` runs after each move. */
function draggable(svg, clouds, onMove, layer) {
  layer.replaceChildren();
  clouds.forEach((cloud, c) => {
    cloud.forEach((pt, i) => {
      const circle = el('circle', { cx: pt[0], cy: pt[1], r: 7, fill: COLOURS[c], 'data-cloud': c, 'data-index': i });
      circle.addEventListener('pointerdown', (event) => {
        circle.setPointerCapture(event.pointerId);
        const move = (e) => {
          const box = svg.getBoundingClientRect();
          pt[0] = Math.min(595, Math.max(5, ((e.clientX - box.left) / box.width) * 600));
          pt[1] = Math.min(355, Math.max(5, ((e.clientY - box.top) / box.height) * 360));
          circle.setAttribute('cx', pt[0]);
          circle.setAttribute('cy', pt[1]);
          onMove();
        };
        const up = () => {
          circle.removeEventListener('pointermove', move);
          circle.removeEventListener('pointerup', up);
        };
        circle.addEventListener('pointermove', move);
        circle.addEventListener('pointerup', up);
      });
      layer.append(circle);
    });
  });
}

// ------------------------------------------------------------------ two clouds
const two = { svg: $('two'), clouds: [ring(8, 190, 180, 90, 0), ring(10, 420, 170, 110, 0.3)] };
two.lines = el('g', {});
two.points = el('g', {});
two.svg.append(two.lines, two.points);

const solveTwo = oneAtATime($('two-result'), async () => {
  const epsilon = epsilonOf($('eps-two'));
  $('eps-two-out').textContent = epsilon.toPrecision(2);
  const r = await client.call('ot.two', {
    x: toSolver(two.clouds[0]), y: toSolver(two.clouds[1]), epsilon,
    backend: BACKEND, maxIterations: MAX_ITERATIONS,
  });
  showError(null);
  const max = Math.max(...r.plan);
  two.lines.replaceChildren();
  r.plan.forEach((p, k) => {
    if (p < 0.02 * max) return;
    const [a, b] = [two.clouds[0][Math.floor(k / r.m)], two.clouds[1][k % r.m]];
    two.lines.append(el('line', {
      x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: '#495057',
      'stroke-width': 1 + 3 * (p / max), 'stroke-opacity': (p / max).toFixed(3),
    }));
  });
  const result = $('two-result');
  result.replaceChildren(`regularised OT cost ${r.reg_ot_cost.toFixed(4)} · transport cost ` +
    `${r.transport_cost.toFixed(4)} · ${iterations(r)} · backend: `, backendLabel(r));
  result.dataset.cost = String(r.reg_ot_cost);
  result.dataset.backend = r.backend;
  document.body.dataset.twoSolved = String(Number(document.body.dataset.twoSolved ?? 0) + 1);
});

draggable(two.svg, two.clouds, solveTwo, two.points);
$('eps-two').addEventListener('input', solveTwo);

// ------------------------------------------------------------------ three clouds
const three = {
  svg: $('three'),
  clouds: [ring(6, 160, 190, 70, 0), ring(6, 310, 150, 80, 0.5), ring(6, 460, 200, 70, 1.0)],
};
three.triangles = el('g', {});
three.points = el('g', {});
three.svg.append(three.triangles, three.points);

const solveThree = oneAtATime($('three-result'), async () => {
  const epsilon = epsilonOf($('eps-three'));
  $('eps-three-out').textContent = epsilon.toPrecision(2);
  const r = await client.call('ot.three', {
    clouds: three.clouds.map(toSolver), epsilon, backend: BACKEND, maxIterations: MAX_ITERATIONS,
  });
  showError(null);
  three.triangles.replaceChildren();
  for (const [i, j, k, share] of r.matches) {
    const pts = [three.clouds[0][i], three.clouds[1][j], three.clouds[2][k]];
    three.triangles.append(el('polygon', {
      points: pts.map((p) => p.join(',')).join(' '), fill: '#868e96',
      'fill-opacity': (0.08 + 0.25 * share).toFixed(3), stroke: '#495057', 'stroke-opacity': 0.6,
    }));
  }
  const result = $('three-result');
  result.replaceChildren(`M3G ${r.m3g.toFixed(4)} = cost of matching each item's views ` +
    `${r.ground_truth_cost.toFixed(4)} − multi-marginal OT ${r.ent_reg_cost.toFixed(4)} · ` +
    `${iterations(r)} · backend: `, backendLabel(r));
  result.dataset.m3g = String(r.m3g);
  result.dataset.backend = r.backend;
  document.body.dataset.threeSolved = 'true';
});

draggable(three.svg, three.clouds, solveThree, three.points);
$('eps-three').addEventListener('input', solveThree);

// ------------------------------------------------------------------ real data
function heatmap(r) {
  const n = r.titles.length;
  const box = $('heatmap');
  box.style.gridTemplateColumns = `auto repeat(${n}, 2rem)`;
  box.replaceChildren();
  const max = Math.max(...r.plan);
  const cell = (cls, text) => {
    const div = document.createElement('div');
    div.className = cls;
    if (text) div.textContent = text;
    return div;
  };
  box.append(cell('label', ''));
  for (const t of r.titles) box.append(cell('col-label', t));
  for (let i = 0; i < n; i++) {
    box.append(cell('label', r.files[i]));
    for (let j = 0; j < n; j++) {
      const p = r.plan[i * n + j];
      const c = cell(`cell${r.matched[i] === j ? ' matched' : ''}`);
      c.style.background = `rgba(28, 126, 214, ${(p / max).toFixed(3)})`;
      c.title = `${r.files[i]} → ${r.titles[j]}: ${p.toExponential(2)}`;
      c.dataset.row = String(i);
      c.dataset.col = String(j);
      box.append(c);
    }
  }
}

const solveReal = oneAtATime($('real-status'), async () => {
  const epsilon = epsilonOf($('eps-real'));
  $('eps-real-out').textContent = epsilon.toPrecision(2);
  const r = await callWithGallery(client, 'ot.gallery', { epsilon, maxIterations: MAX_ITERATIONS }, {
    button: $('real'), progress: $('real-progress'), status: $('real-status'), onError: showError,
  });
  if (!r) return;
  showError(null);
  heatmap(r);
  $('real-status').replaceChildren(`${r.correct} of ${r.titles.length} photos get most of their mass ` +
    `on their own caption · ${iterations(r)} · backend: `, backendLabel(r));
  $('real-status').dataset.correct = String(r.correct);
  document.body.dataset.realSolved = 'true';
});

$('real').addEventListener('click', solveReal);
$('eps-real').addEventListener('change', () => { if (document.body.dataset.realSolved) solveReal(); });
$('eps-real-out').textContent = epsilonOf($('eps-real')).toPrecision(2);

Promise.all([solveTwo(), solveThree()]).then(() => { document.body.dataset.ready = 'true'; });
