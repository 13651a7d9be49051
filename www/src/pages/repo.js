// Repoformer page: the committed line-completion tasks on the Python standard library (the
// site build bundles them with their repositories' files), one task completed without and
// with RepoEval's retrieval side by side with the retrieved chunks and the confidence
// policy's decision, and a sample of tasks with every policy and the threshold sweep
// (`latentlab repo eval` / `repo sweep` run the whole list natively).
import { renderShell } from '../shell.js';
import { ModelSession } from '../lm-session.js';
import { fetchVerified } from '../fetch-data.js';
import { lineChart } from '../charts.js';

renderShell('repo');

const $ = (id) => document.getElementById(id);
// Absolute: the worker resolves relative URLs against its own script, not this page.
const DATA_URL = (file) => new URL(`./repo/${file}`, location.href).href;
const CONFIDENCE_TOKENS = 4;

let busy = false;
const session = new ModelSession({
  status: $('model-status'),
  bar: $('load-progress'),
  activations: 'int8',
  onChange: () => setBusy(busy),
  describe: (info) => `${info.name} (${info.activations} activations)`,
});
let index = null; // index.json: {source, tasks, repositories}
const runs = new Map(); // task_id → run, from both panels
let current = null; // the run shown in the task panel
let chart = null;

function showError(err) {
  $('error').textContent = err ? (err.message ?? String(err)) : '';
  $('error').hidden = !err;
}

function setBusy(value) {
  busy = value;
  const ready = session.loaded && index !== null;
  $('run').disabled = !ready || value;
  $('evaluate').disabled = !ready || value;
  $('stop').disabled = !value;
  $('load').disabled = value || session.loaded;
}

const percent = (x) => `${(100 * x).toFixed(1)}%`;
/** The prompt's size, half of it for the cross-file context (the reference: 2,048 and 512). */
const options = () => {
  const maxSequence = Number($('prompt-size').value);
  return { maxSequence, contextTokens: maxSequence / 2 };
};

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

async function loadTasks() {
  try {
    const response = await fetchVerified(DATA_URL('index.json'));
    if (!response.ok) {
      throw new Error(`The tasks are missing (repo/index.json: HTTP ${response.status}). The site build `
        + 'bundles them from the installed Python 3.11 standard library (scripts/lib.sh, make_repo_site_data).');
    }
    index = await response.json();
    const names = index.repositories.map((r) => r.name);
    $('repository').replaceChildren(...names.map((name) => new Option(
      `${name} (${index.tasks.filter((t) => t.repository === name).length} tasks)`, name)));
    $('data-status').textContent = `${index.tasks.length} tasks from ${names.length} repositories: ${index.source}.`;
    fillTasks();
    document.body.dataset.tasks = 'loaded';
  } catch (err) {
    $('data-status').textContent = err.message ?? String(err);
    document.body.dataset.tasks = 'missing';
  } finally {
    setBusy(busy);
  }
}

function repositoryUrl(name) {
  const entry = index.repositories.find((r) => r.name === name);
  return DATA_URL(entry.file);
}

function fillTasks() {
  const name = $('repository').value;
  const tasks = index.tasks.filter((t) => t.repository === name);
  $('task').replaceChildren(...tasks.map((t) => new Option(`${t.path}:${t.line}  ${t.target.trim()}`, t.task_id)));
  showTask();
}

const bundles = new Map(); // repository → its files (the page's copy, for the left context)

async function repositoryFiles(name) {
  if (!bundles.has(name)) {
    const response = await fetchVerified(repositoryUrl(name));
    if (!response.ok) throw new Error(`${repositoryUrl(name)}: HTTP ${response.status}`);
    bundles.set(name, (await response.json()).files);
  }
  return bundles.get(name);
}

const selectedTask = () => index.tasks.find((t) => t.task_id === $('task').value);

/** The task's last lines before the cursor, fetched with the repository's files. */
async function showTask() {
  const task = selectedTask();
  current = runs.get(task.task_id) ?? null;
  $('target').textContent = task.target;
  $('left-context').textContent = '…';
  renderRun();
  try {
    const file = (await repositoryFiles(task.repository)).find((f) => f.path === task.path);
    const lines = file.text.split('\n').slice(0, task.line - 1);
    if (selectedTask() === task) {
      $('left-context').textContent = `${lines.slice(-14).join('\n')}\n▌`;
    }
  } catch (err) {
    showError(err);
  }
}

function scoresLine(outcome) {
  const c = outcome.completion;
  const s = outcome.scores;
  const seconds = c.token_seconds.length ? c.token_seconds[c.token_seconds.length - 1] : c.prompt_seconds;
  return `exact match ${s.exact_match ? 'yes' : 'no'}, edit similarity ${s.edit_similarity.toFixed(3)}; `
    + `${c.prompt_tokens} prompt tokens, ${seconds.toFixed(1)} s`;
}

function meanOfFirst(values, k) {
  const head = values.slice(0, k);
  return head.reduce((a, b) => a + b, 0) / head.length;
}

/** The task panel's columns, the decision at the slider's threshold and the chunks. */
function renderRun() {
  const r = current;
  for (const side of ['without', 'with']) {
    $(`${side}-text`).textContent = r ? r[side].completion.text : '';
    $(`${side}-scores`).textContent = r ? scoresLine(r[side]) : '';
  }
  const threshold = Number($('threshold').value);
  $('threshold-out').value = threshold.toFixed(2);
  if (!r) {
    $('decision').textContent = '';
    $('chunks').replaceChildren();
    $('chunks-summary').textContent = 'Retrieved chunks';
    return;
  }
  const logprob = meanOfFirst(r.without.completion.logprobs, CONFIDENCE_TOKENS);
  const entropy = meanOfFirst(r.without.completion.entropies, CONFIDENCE_TOKENS);
  const retrieve = logprob < threshold;
  const helps = r.with.scores.edit_similarity > r.without.scores.edit_similarity;
  $('decision').textContent = `Confidence without retrieval: mean log-probability ${logprob.toFixed(2)} `
    + `(p ≈ ${Math.exp(logprob).toFixed(2)}), mean entropy ${entropy.toFixed(2)} nats. `
    + `The confidence policy ${retrieve ? 'retrieves' : 'does not retrieve'}; retrieval `
    + `${helps ? 'helped' : 'did not help'} here (the oracle's label: edit similarity with > without).`;
  $('decision').dataset.retrieve = String(retrieve);
  $('decision').dataset.helps = String(helps);
  $('chunks-summary').textContent = `Retrieved chunks: ${r.retrieved.length}, in ${(1000 * r.retrieval_seconds).toFixed(0)} ms`;
  $('chunks').replaceChildren(...r.retrieved.map((c) => {
    const li = document.createElement('li');
    const head = document.createElement('div');
    head.textContent = `${c.path} (Jaccard ${c.score.toFixed(3)})`;
    const pre = document.createElement('pre');
    pre.textContent = c.text;
    li.append(head, pre);
    return li;
  }));
}

async function runTask() {
  showError(null);
  setBusy(true);
  const task = selectedTask();
  $('run-status').textContent = 'Completing without retrieval, then retrieving and completing with it…';
  delete document.body.dataset.ran;
  try {
    const run = await session.client.call('repo.run', { task, url: repositoryUrl(task.repository), options: options() });
    runs.set(task.task_id, run);
    if (selectedTask() === task) {
      current = run;
      renderRun();
    }
    $('run-status').textContent = `Done: ${runs.size} task${runs.size === 1 ? '' : 's'} run on this page.`;
    document.body.dataset.ran = 'true';
  } catch (err) {
    showError(err);
    $('run-status').textContent = '';
  } finally {
    setBusy(false);
  }
}

/** A single completion runs synchronously in the worker: stopping means a new worker, and
 * the model is read again from the browser's cache. */
async function stop() {
  if (!busy) return;
  $('run-status').textContent = 'Stopped; reloading the model from the cache…';
  setBusy(false);
  await session.restart().catch(showError);
}

/** `size` tasks taken from the repositories in turn (each one's first tasks first), not yet run. */
function sampleTasks(size) {
  const byRepository = new Map();
  for (const t of index.tasks) {
    if (!byRepository.has(t.repository)) byRepository.set(t.repository, []);
    byRepository.get(t.repository).push(t);
  }
  const queues = [...byRepository.values()];
  const out = [];
  for (let round = 0; out.length < size; round += 1) {
    const before = out.length;
    for (const q of queues) {
      if (round < q.length && out.length < size) out.push(q[round]);
    }
    if (out.length === before) break;
  }
  return out;
}

function renderSummary(summary) {
  const labels = { never: 'never retrieve', always: 'always retrieve', oracle: 'oracle (retrieve iff it helps)' };
  $('policy-rows').replaceChildren(...summary.rows.map((row) => {
    const tr = document.createElement('tr');
    tr.dataset.policy = row.policy;
    tr.dataset.editSimilarity = String(row.edit_similarity);
    tr.dataset.retrievalRate = String(row.retrieval_rate);
    const name = labels[row.policy] ?? `confidence, log p < ${row.threshold.toFixed(2)}`;
    const cells = [name, percent(row.exact_match),
      `${row.edit_similarity.toFixed(3)} (${row.ci95.edit_similarity[0].toFixed(3)}–${row.ci95.edit_similarity[1].toFixed(3)})`,
      percent(row.retrieval_rate), row.seconds_per_task.toFixed(1)];
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.append(td);
    }
    return tr;
  }));
  const point = (r) => ({ x: 100 * r.retrieval_rate, y: r.edit_similarity });
  const [, always, oracle] = summary.rows;
  chart = lineChart($('curve'), chart, [
    { label: 'confidence policy, threshold swept', data: summary.sweep.map(point), borderColor: '#1f6feb', backgroundColor: '#1f6feb' },
    { label: 'always retrieve', data: [{ x: 0, y: always.edit_similarity }, { x: 100, y: always.edit_similarity }], borderColor: '#999', borderDash: [6, 4], pointRadius: 0 },
    { label: 'oracle', data: [point(oracle)], borderColor: '#2da44e', backgroundColor: '#2da44e', showLine: false, pointRadius: 5 },
  ], { x: '% of tasks that retrieved', y: 'mean edit similarity', yMax: 1 });
  $('curve').dataset.points = String(summary.sweep.length);
}

let swept = { count: -1, sweep: [] }; // the sweep of the last set of runs

async function summarize() {
  const all = [...runs.values()];
  if (all.length === 0) return;
  const fresh = swept.count !== all.length;
  const summary = await session.client.call('repo.summary', {
    runs: all, signal: 'logprob', threshold: Number($('threshold').value), sweep: fresh,
  });
  if (fresh) swept = { count: all.length, sweep: summary.sweep };
  renderSummary({ ...summary, sweep: swept.sweep });
}

async function evaluate() {
  showError(null);
  setBusy(true);
  $('eval-stop').disabled = false;
  const size = Number($('sample').value);
  const todo = sampleTasks(size).filter((t) => !runs.has(t.task_id));
  const bar = $('eval-progress');
  bar.hidden = false;
  bar.max = Math.max(todo.length, 1);
  bar.value = 0;
  delete document.body.dataset.evaluated;
  try {
    const items = todo.map((task) => ({ task, url: repositoryUrl(task.repository) }));
    const report = await session.client.call('repo.sample', { items, options: options() }, {
      onProgress: ({ done, total, run }) => {
        runs.set(run.task_id, run);
        bar.value = done;
        $('eval-status').textContent = `${done} of ${total} tasks completed (${run.task_id}).`;
      },
    });
    for (const run of report.runs) runs.set(run.task_id, run);
    await summarize();
    $('eval-status').textContent = `${report.cancelled ? 'Stopped. ' : ''}${runs.size} tasks from `
      + `${new Set([...runs.values()].map((r) => r.repository)).size} repositories.`;
    document.body.dataset.evaluated = report.cancelled ? 'cancelled' : 'true';
  } catch (err) {
    showError(err);
  } finally {
    bar.hidden = true;
    $('eval-stop').disabled = true;
    setBusy(false);
  }
}

$('repository').addEventListener('change', fillTasks);
$('task').addEventListener('change', showTask);
$('threshold').addEventListener('input', () => {
  renderRun();
  if (runs.size && !busy) summarize().catch(showError);
});
$('sample').addEventListener('input', () => { $('sample-out').value = $('sample').value; });
$('load').addEventListener('click', loadModel);
$('run').addEventListener('click', runTask);
$('stop').addEventListener('click', stop);
$('evaluate').addEventListener('click', evaluate);
$('eval-stop').addEventListener('click', () => session.client.call('lm.cancel').catch(showError));
setBusy(false);
loadTasks().then(() => { document.body.dataset.ready = 'true'; });
