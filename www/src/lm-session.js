// The language-model pages' shared panel: a worker client that loads SmolLM2-135M on a click
// (download with progress, sha256, Cache API), says so in the page, notices when the worker
// (and the model with it) is lost, and restarts the worker to stop a call that runs
// synchronously in wasm.
import { LatentlabClient } from './client.js';

// Absolute: the worker resolves relative URLs against its own script, not the page.
const MANIFEST_URL = new URL('./models/manifest.json', location.href).href;
const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);

export class ModelSession {
  /**
   * `status` and `bar`: the panel's text and <progress>; `activations`: "f32" or "int8"
   * (undefined: the model's default); `onChange()` runs whenever `loaded` changes;
   * `describe(info)` writes the status once loaded.
   */
  constructor({ status, bar, activations, onChange, describe }) {
    Object.assign(this, { status, bar, activations, onChange, describe });
    this.loaded = false;
    this.client = this.#newClient();
  }

  #newClient() {
    const c = new LatentlabClient();
    c.addEventListener('lost', () => {
      if (!this.loaded) return;
      this.loaded = false;
      delete document.body.dataset.model;
      this.status.textContent = 'The model was lost with the worker: load it again.';
      this.onChange();
    });
    return c;
  }

  /** Loads the model in the worker; throws what went wrong (the status says "Not loaded."). */
  async load() {
    const { bar, status } = this;
    bar.hidden = false;
    try {
      const info = await this.client.call('lm.load', { manifestUrl: MANIFEST_URL, activations: this.activations }, {
        onProgress: (p) => {
          if (p.phase === 'open') {
            bar.removeAttribute('value');
            status.textContent = 'Reading the GGUF file…';
            return;
          }
          bar.max = p.total || 1;
          bar.value = p.loaded;
          status.textContent = p.cached
            ? `Read ${mib(p.loaded)} MiB from the browser's cache…`
            : `Downloading: ${mib(p.loaded)} of ${p.total ? mib(p.total) : '?'} MiB…`;
        },
      });
      this.loaded = true;
      status.textContent = `${this.describe(info)}; ready in ${info.seconds.toFixed(1)} s${info.cached ? ' (from the cache)' : ''}.`;
      document.body.dataset.model = 'loaded';
    } catch (err) {
      status.textContent = 'Not loaded.';
      throw err;
    } finally {
      bar.hidden = true;
      this.onChange();
    }
  }

  /** Stops whatever the worker runs: a new worker, the model read again from the cache. */
  async restart() {
    this.client.terminate();
    this.client = this.#newClient();
    this.loaded = false;
    this.onChange();
    await this.load();
  }
}
