// Plan graphs page: pick or paste a plan, analyse it in the worker, draw its graph
// (dagre layout, our own SVG), its earliest-start schedule, the PLaG prompt, and
// score a model's answer.
import dagre from '@dagrejs/dagre';
import { timeTicks } from '../ticks.js';
import { renderShell } from '../shell.js';
import { LatentlabClient } from '../client.js';
import { fetchVerified } from '../fetch-data.js';

renderShell('plans');

const SVG_NS = 'http://www.w3.org/2000/svg';
const EXAMPLES_URL = './examples/asynchow-examples.json';

// Written for this site in latentlab's own plan format; offered after the AsyncHow records.
const TEA_EXAMPLE = {
  title: 'How to make a pot of tea',
  steps: [
    { id: 'boil', text: 'Fill the kettle and bring the water to the boil', duration: '4 minutes' },
    { id: 'warm', text: 'Warm the teapot with hot tap water', duration: '1 minute' },
    { id: 'leaves', text: 'Measure the tea leaves into the pot', duration: '30 seconds' },
    { id: 'cups', text: 'Set out cups, milk and sugar', duration: '2 minutes' },
    { id: 'pour', text: 'Pour the boiling water over the leaves', duration: '30 seconds' },
    { id: 'steep', text: 'Let the tea steep', duration: [180, 300] },
    { id: 'serve', text: 'Pour the tea through a strainer into the cups', duration: '1 minute' },
  ],
  constraints: [
    ['warm', 'leaves'],
    ['boil', 'pour'],
    ['leaves', 'pour'],
    ['pour', 'steep'],
    ['steep', 'serve'],
    ['cups', 'serve'],
  ],
};

const $ = (id) => document.getElementById(id);
const els = {
  exampleSelect: $('example-select'),
  planInput: $('plan-input'),
  analyzeButton: $('analyze-button'),
  status: $('status'),
  error: $('error'),
  planTitle: $('plan-title'),
  optimal: $('optimal-time'),
  sequential: $('sequential-time'),
  speedup: $('speedup'),
  dag: $('dag'),
  gantt: $('gantt'),
  encoding: $('encoding-select'),
  bag: $('bag-checkbox'),
  cot: $('cot-checkbox'),
  promptOutput: $('prompt-output'),
  copyButton: $('copy-prompt'),
  copyStatus: $('copy-status'),
  answerInput: $('answer-input'),
  scoreButton: $('score-button'),
  scoreResult: $('score-result'),
};

const client = new LatentlabClient();

/**
 * Readable durations for every number the page shows, made by the worker (latentlab's
 * formatter) with each analysis, so the main thread never loads the wasm module.
 */
let secondsLabels = {};
const formatSeconds = (seconds) => secondsLabels[seconds] ?? `${seconds} s`;

/** Plans offered in the picker: {label, text}. */
let examples = [];
/** The text of the plan now shown; prompts use it, not unsaved edits. */
let shownText = null;
/** The error of the last analysis, while the editor holds a plan that failed: no scoring. */
let planError = null;
/** Bumped per analysis, so a slow answer for older input never overwrites a newer one. */
let analysisGeneration = 0;
let promptGeneration = 0;

// ---------------------------------------------------------------- small helpers

/** "5 min" or "98 d – 107 d" for a [low, high] range of seconds. */
function formatRange([low, high]) {
  return low === high ? formatSeconds(low) : `${formatSeconds(low)} – ${formatSeconds(high)}`;
}

/** "×1.18", or "×2.55 – 2.57" when the speed-up depends on month lengths. */
function formatSpeedup([low, high]) {
  const values = [low, high].filter((v) => v !== null && Number.isFinite(v));
  if (values.length === 0) return '—';
  const texts = [...new Set(values.sort((a, b) => a - b).map((v) => v.toFixed(2)))];
  return `×${texts.join(' – ')}`;
}

/**
 * Sets an SVG <text>'s content, shortened with "…" until it fits `maxWidth` pixels.
 * Needs the element to be in the document, where the browser can measure it.
 */
function setFittedText(textEl, text, maxWidth) {
  textEl.textContent = text;
  if (textEl.getComputedTextLength() <= maxWidth) return;
  let low = 0;
  let high = text.length;
  // Binary search on the number of characters kept.
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    textEl.textContent = `${text.slice(0, mid).trimEnd()}…`;
    if (textEl.getComputedTextLength() <= maxWidth) low = mid;
    else high = mid - 1;
  }
  textEl.textContent = `${text.slice(0, low).trimEnd()}…`;
}

function svgEl(name, attrs = {}, parent = null) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (parent) parent.appendChild(el);
  return el;
}

/**
 * JSON with two-space indentation, but arrays and objects that fit on one line
 * stay on one line, so AsyncHow records (matrices, edge lists) remain readable.
 */
function prettyJson(value, indent = '') {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const inner = `${indent}  `;
  const isArray = Array.isArray(value);
  const parts = isArray
    ? value.map((item) => prettyJson(item, inner))
    : Object.entries(value).map(([key, item]) => `${JSON.stringify(key)}: ${prettyJson(item, inner)}`);
  const [open, close] = isArray ? ['[', ']'] : ['{', '}'];
  if (parts.length === 0) return open + close;
  const oneLine = isArray ? `[${parts.join(', ')}]` : `{ ${parts.join(', ')} }`;
  if (!oneLine.includes('\n') && indent.length + oneLine.length <= 88) return oneLine;
  return `${open}\n${parts.map((p) => inner + p).join(',\n')}\n${indent}${close}`;
}

function showError(message) {
  els.error.textContent = message;
  els.error.hidden = false;
}

function clearError() {
  els.error.textContent = '';
  els.error.hidden = true;
}

// ---------------------------------------------------------------- examples

/** Resolves with why the bundled examples could not be loaded, or null. */
async function loadExamples() {
  let records = [];
  let failure = null;
  try {
    const response = await fetchVerified(EXAMPLES_URL);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    records = await response.json();
  } catch (err) {
    failure = `Could not load the bundled examples (${err.message}).`;
  }
  examples = records.map((record) => ({ label: record.titles, text: prettyJson(record) }));
  examples.push({ label: `${TEA_EXAMPLE.title} (latentlab format)`, text: prettyJson(TEA_EXAMPLE) });

  els.exampleSelect.replaceChildren(
    ...examples.map((example, index) => new Option(example.label, String(index))),
  );
  els.exampleSelect.disabled = false;
  return failure;
}

function selectExample(index) {
  const example = examples[index];
  if (!example) return Promise.resolve();
  els.exampleSelect.value = String(index);
  els.planInput.value = example.text;
  return analyze();
}

// ---------------------------------------------------------------- analysis

async function analyze() {
  const text = els.planInput.value;
  const generation = ++analysisGeneration;
  els.status.textContent = 'Analysing…';
  els.analyzeButton.disabled = true;
  try {
    const { plan, analysis, labels } = await client.call('plan.analyze', { text });
    if (generation !== analysisGeneration) return;
    secondsLabels = labels;
    clearError();
    shownText = text;
    planError = null;
    renderSummary(plan, analysis);
    renderDag(plan, analysis);
    renderGantt(plan, analysis);
    clearScore();
    await updatePrompt();
  } catch (err) {
    if (generation !== analysisGeneration) return;
    // Keep the last good result on screen; the error explains why it did not change.
    planError = err.message;
    showError(err.message);
  } finally {
    if (generation === analysisGeneration) {
      els.status.textContent = '';
      els.analyzeButton.disabled = false;
    }
  }
}

function renderSummary(plan, analysis) {
  els.planTitle.textContent = plan.title || 'Untitled plan';
  els.optimal.textContent = analysis.optimal_text;
  els.optimal.dataset.low = String(analysis.optimal_seconds[0]);
  els.optimal.dataset.high = String(analysis.optimal_seconds[1]);
  els.sequential.textContent = analysis.sequential_text;
  els.sequential.dataset.low = String(analysis.sequential_seconds[0]);
  els.sequential.dataset.high = String(analysis.sequential_seconds[1]);
  els.speedup.textContent = formatSpeedup(analysis.speedup);
}

// ---------------------------------------------------------------- DAG

const NODE_WIDTH = 210;
const NODE_HEIGHT = 46;
const TERMINAL_WIDTH = 70;

/** Every edge drawn: START → sources, constraints, sinks → END (deduplicated). */
function graphEdges(plan) {
  const hasPredecessor = new Set(plan.constraints.map(([, after]) => after));
  const hasSuccessor = new Set(plan.constraints.map(([before]) => before));
  const edges = new Map();
  const add = (from, to) => edges.set(`${from}\u0000${to}`, [from, to]);
  for (const step of plan.steps) if (!hasPredecessor.has(step.id)) add('START', step.id);
  for (const [before, after] of plan.constraints) add(before, after);
  for (const step of plan.steps) if (!hasSuccessor.has(step.id)) add(step.id, 'END');
  return [...edges.values()];
}

/** Edge keys along the critical path, START and END included. */
function criticalEdgeKeys(criticalPath) {
  const keys = new Set();
  if (criticalPath.length === 0) return keys;
  const path = ['START', ...criticalPath, 'END'];
  for (let i = 1; i < path.length; i += 1) keys.add(`${path[i - 1]}\u0000${path[i]}`);
  return keys;
}

/** A smooth SVG path through dagre's edge points (the B-spline d3's curveBasis draws). */
function basisPath(points) {
  const p = points.map(({ x, y }) => [x, y]);
  if (p.length < 3) return `M${p[0]}L${p[p.length - 1]}`;
  let d = `M${p[0]}L${(5 * p[0][0] + p[1][0]) / 6},${(5 * p[0][1] + p[1][1]) / 6}`;
  const bezier = (a, b, c) =>
    `C${(2 * a[0] + b[0]) / 3},${(2 * a[1] + b[1]) / 3} ${(a[0] + 2 * b[0]) / 3},${(a[1] + 2 * b[1]) / 3} ` +
    `${(a[0] + 4 * b[0] + c[0]) / 6},${(a[1] + 4 * b[1] + c[1]) / 6}`;
  for (let i = 2; i < p.length; i += 1) d += bezier(p[i - 2], p[i - 1], p[i]);
  const n = p.length;
  d += bezier(p[n - 2], p[n - 1], p[n - 1]);
  return `${d}L${p[n - 1]}`;
}

function layoutGraph(plan, edges) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 46, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  g.setNode('START', { width: TERMINAL_WIDTH, height: 32 });
  g.setNode('END', { width: TERMINAL_WIDTH, height: 32 });
  for (const step of plan.steps) g.setNode(step.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const [from, to] of edges) g.setEdge(from, to);
  dagre.layout(g);
  return g;
}

function addArrowMarker(defs, id, className) {
  const marker = svgEl('marker', {
    id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
    orient: 'auto-start-reverse', class: className,
  }, defs);
  svgEl('path', { d: 'M0,0 L10,5 L0,10 z' }, marker);
}

function renderDag(plan, analysis) {
  const edges = graphEdges(plan);
  const g = layoutGraph(plan, edges);
  const { width, height } = g.graph();
  const critical = new Set(analysis.critical_path);
  const criticalEdges = criticalEdgeKeys(analysis.critical_path);
  const timing = new Map(analysis.steps.map((s) => [s.id, s]));

  const svg = svgEl('svg', {
    viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'dag-svg',
    'aria-label': `Graph of ${plan.steps.length} steps; critical path ${analysis.critical_path.join(' → ')}`,
  });
  svg.style.maxWidth = `${width}px`;
  svg.style.minWidth = `${Math.min(width, 640)}px`;
  const defs = svgEl('defs', {}, svg);
  addArrowMarker(defs, 'dag-arrow', 'arrow');
  addArrowMarker(defs, 'dag-arrow-critical', 'arrow critical');

  // Edges first so nodes sit on top of them.
  const edgeLayer = svgEl('g', { class: 'edges' }, svg);
  for (const [from, to] of edges) {
    const isCritical = criticalEdges.has(`${from}\u0000${to}`);
    svgEl('path', {
      class: isCritical ? 'edge critical' : 'edge',
      'data-from': from, 'data-to': to,
      d: basisPath(g.edge(from, to).points),
      'marker-end': `url(#${isCritical ? 'dag-arrow-critical' : 'dag-arrow'})`,
    }, edgeLayer);
  }

  // In the document before the nodes are drawn, so their labels can be measured.
  els.dag.replaceChildren(svg);
  const nodeLayer = svgEl('g', { class: 'nodes' }, svg);
  for (const id of ['START', 'END']) drawTerminal(nodeLayer, id, g.node(id));
  for (const step of plan.steps) {
    drawStepNode(nodeLayer, step, g.node(step.id), timing.get(step.id), critical.has(step.id));
  }
}

function drawTerminal(parent, id, pos) {
  const group = svgEl('g', { class: 'node terminal', 'data-node': id }, parent);
  svgEl('rect', {
    x: pos.x - pos.width / 2, y: pos.y - pos.height / 2, width: pos.width, height: pos.height,
    rx: pos.height / 2,
  }, group);
  const label = svgEl('text', { x: pos.x, y: pos.y, 'text-anchor': 'middle', 'dominant-baseline': 'central' }, group);
  label.textContent = id;
}

function drawStepNode(parent, step, pos, timing, isCritical) {
  const group = svgEl('g', { class: isCritical ? 'node critical' : 'node', 'data-step-id': step.id }, parent);
  const title = svgEl('title', {}, group);
  const lines = [`${step.id}. ${step.text}`, `Duration: ${step.duration_text} (${formatRange(step.duration)})`];
  if (timing) {
    lines.push(`Earliest start: ${formatRange(timing.earliest_start)}`);
    lines.push(`Slack: ${formatRange(timing.slack)}${isCritical ? ' (critical)' : ''}`);
  }
  title.textContent = lines.join('\n');

  const left = pos.x - pos.width / 2;
  const top = pos.y - pos.height / 2;
  svgEl('rect', { x: left, y: top, width: pos.width, height: pos.height, rx: 7 }, group);
  const label = svgEl('text', { x: left + 10, y: top + 19, class: 'label' }, group);
  setFittedText(label, `${step.id}. ${step.text}`, pos.width - 20);
  const duration = svgEl('text', { x: left + 10, y: top + 36, class: 'duration' }, group);
  setFittedText(duration, step.duration_text, pos.width - 20);
}

// ---------------------------------------------------------------- Gantt

function renderGantt(plan, analysis) {
  const textOf = new Map(plan.steps.map((s) => [s.id, s]));
  const order = new Map(plan.steps.map((s, i) => [s.id, i]));
  // Rows in the order the steps can start, ties in plan order.
  const rows = [...analysis.steps].sort((a, b) =>
    a.earliest_start[1] - b.earliest_start[1] ||
    a.earliest_start[0] - b.earliest_start[0] ||
    order.get(a.id) - order.get(b.id));

  const labelWidth = 270;
  const chartWidth = 640;
  const rowHeight = 28;
  const top = 10;
  // Room on the right for the duration written after the longest bar.
  const width = labelWidth + chartWidth + 90;
  const height = top + rows.length * rowHeight + 36;
  const end = Math.max(analysis.optimal_seconds[1], ...rows.map((r) => r.earliest_finish[1]), 0);
  const ticks = timeTicks(end);
  const axisEnd = ticks[ticks.length - 1];
  const x = (seconds) => labelWidth + (axisEnd > 0 ? (seconds / axisEnd) * chartWidth : 0);

  const svg = svgEl('svg', {
    viewBox: `0 0 ${width} ${height}`, class: 'gantt-svg', role: 'img',
    'aria-label': `Schedule of ${rows.length} steps over ${analysis.optimal_text}`,
  });
  svg.style.maxWidth = `${width}px`;
  // In the document before drawing, so row labels can be measured and shortened.
  els.gantt.replaceChildren(svg);

  const grid = svgEl('g', { class: 'grid' }, svg);
  const axisY = top + rows.length * rowHeight + 6;
  for (const t of ticks) {
    svgEl('line', { x1: x(t), x2: x(t), y1: top - 4, y2: axisY }, grid);
    const label = svgEl('text', { x: x(t), y: axisY + 16, 'text-anchor': 'middle', class: 'tick' }, grid);
    label.textContent = t === 0 ? '0' : formatSeconds(t);
  }

  rows.forEach((row, index) => {
    const step = textOf.get(row.id);
    const y = top + index * rowHeight;
    const group = svgEl('g', { class: row.critical ? 'row critical' : 'row' }, svg);
    const title = svgEl('title', {}, group);
    title.textContent = `${row.id}. ${step?.text ?? ''}\nStarts at ${formatRange(row.earliest_start)}, ` +
      `takes ${step?.duration_text ?? formatRange(row.duration)}\nSlack: ${formatRange(row.slack)}`;
    if (index % 2 === 0) {
      svgEl('rect', { x: 0, y, width, height: rowHeight, class: 'stripe' }, group);
    }
    const label = svgEl('text', { x: 6, y: y + rowHeight / 2, 'dominant-baseline': 'central', class: 'row-label' }, group);
    setFittedText(label, `${row.id}. ${step?.text ?? ''}`, labelWidth - 18);

    const barX = x(row.earliest_start[1]);
    const barWidth = Math.max(x(row.earliest_finish[1]) - barX, 2);
    svgEl('rect', {
      x: barX, y: y + 5, width: barWidth, height: rowHeight - 10, rx: 3,
      class: row.critical ? 'bar critical' : 'bar', 'data-step-id': row.id,
    }, group);
    // Durations such as "2 month" are ranges: the lighter inner bar is the shortest case.
    if (row.duration[0] !== row.duration[1]) {
      const lowWidth = Math.max(x(row.earliest_start[1] + row.duration[0]) - barX, 1);
      svgEl('rect', { x: barX, y: y + 10, width: lowWidth, height: rowHeight - 20, class: 'bar-low' }, group);
    }
    const duration = svgEl('text', {
      x: barX + barWidth + 6, y: y + rowHeight / 2, 'dominant-baseline': 'central', class: 'bar-label',
    }, group);
    duration.textContent = step?.duration_text ?? '';
  });
  svgEl('line', { x1: labelWidth, x2: labelWidth + chartWidth, y1: axisY, y2: axisY, class: 'axis' }, svg);
}

// ---------------------------------------------------------------- PLaG prompt

function promptOptions() {
  return { encoding: els.encoding.value, bag: els.bag.checked, chainOfThought: els.cot.checked };
}

/** BaG only goes with the plain question, so the checkbox is off for other encodings. */
function syncBagCheckbox() {
  const plain = els.encoding.value === 'none';
  if (!plain) els.bag.checked = false;
  els.bag.disabled = !plain;
}

async function updatePrompt() {
  if (shownText === null) return;
  const generation = ++promptGeneration;
  try {
    const prompt = await client.call('plan.prompt', { text: shownText, options: promptOptions() });
    if (generation === promptGeneration) els.promptOutput.value = prompt;
  } catch (err) {
    if (generation === promptGeneration) {
      els.promptOutput.value = '';
      showError(err.message);
    }
  }
}

async function copyPrompt() {
  const text = els.promptOutput.value;
  let copied = false;
  try {
    await navigator.clipboard.writeText(text);
    copied = true;
  } catch {
    // Clipboard API missing or refused (e.g. not a secure context): select and copy.
    els.promptOutput.focus();
    els.promptOutput.select();
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
  }
  els.copyStatus.textContent = copied ? 'Copied' : 'Select the text and copy it by hand';
  setTimeout(() => { els.copyStatus.textContent = ''; }, 2500);
}

// ---------------------------------------------------------------- scoring

function clearScore() {
  els.scoreResult.replaceChildren();
  delete els.scoreResult.dataset.correct;
  delete els.scoreResult.dataset.reason;
  els.scoreResult.className = 'score-result';
}

/** Says in the score box that there is no valid plan to score against, and why. */
function showInvalidPlan(why) {
  clearScore();
  els.scoreResult.dataset.reason = 'invalid_plan';
  els.scoreResult.className = 'score-result incorrect';
  const verdict = document.createElement('strong');
  verdict.textContent = 'Not scored';
  const message = document.createElement('span');
  message.textContent = ` — the plan in the editor is invalid (${why}), so it has no optimal time. Fix the plan first.`;
  els.scoreResult.replaceChildren(verdict, message);
}

async function scoreAnswer() {
  // An answer is scored against the plan in the editor: edited since the last analysis,
  // it is analysed first; invalid, it is not scored (the plan still drawn is an older one).
  if (els.planInput.value !== shownText) await analyze();
  if (planError !== null) {
    showInvalidPlan(planError);
    return;
  }
  if (shownText === null) return;
  try {
    const score = await client.call('plan.score', { text: shownText, answer: els.answerInput.value });
    els.scoreResult.dataset.correct = String(score.correct);
    els.scoreResult.dataset.reason = score.reason ?? '';
    els.scoreResult.className = `score-result ${score.correct ? 'correct' : 'incorrect'}`;
    const verdict = document.createElement('strong');
    verdict.textContent = score.correct ? '✓ Correct' : '✗ Not correct';
    const message = document.createElement('span');
    // The message for a right answer is just "correct"; say what was matched instead.
    message.textContent = score.correct
      ? ` — "${score.answer_text}" matches the optimal time.`
      : ` — ${score.message}.`;
    const expected = document.createElement('div');
    expected.className = 'hint';
    expected.textContent = `Expected: ${formatRange(score.expected_seconds)}`;
    els.scoreResult.replaceChildren(verdict, message, expected);
  } catch (err) {
    clearScore();
    showError(err.message);
  }
}

// ---------------------------------------------------------------- wiring

els.exampleSelect.addEventListener('change', () => selectExample(Number(els.exampleSelect.value)));
els.analyzeButton.addEventListener('click', () => analyze());
els.planInput.addEventListener('keydown', (event) => {
  // Ctrl/Cmd+Enter analyses without reaching for the mouse.
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) analyze();
});
els.encoding.addEventListener('change', () => { syncBagCheckbox(); updatePrompt(); });
els.bag.addEventListener('change', () => updatePrompt());
els.cot.addEventListener('change', () => updatePrompt());
els.copyButton.addEventListener('click', () => copyPrompt());
els.scoreButton.addEventListener('click', () => scoreAnswer());

async function start() {
  syncBagCheckbox();
  try {
    const failure = await loadExamples();
    await selectExample(0);
    // After the first analysis, which clears earlier errors, so that it stays in view.
    if (failure) showError(failure);
  } finally {
    // Tests (and people) can rely on a first result being on screen from here on.
    document.body.dataset.ready = 'true';
  }
}

start();
