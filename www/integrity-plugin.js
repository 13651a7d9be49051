// The sha256 of every data file the site fetches at runtime, computed when the site is built
// and handed to its code as `import('virtual:latentlab-integrity')`: {path under the site's
// root → sha256 hex}. The table travels inside the JS bundle, which the page trusts already
// (script-src 'self'), so a file that is damaged or swapped on the host or on the way is
// refused (www/src/fetch-data.js) instead of checked against a list that could be swapped
// with it.
//
// Everything the pages fetch as data is in www/public (committed files, and the models,
// stamps and XRM pictures scripts/lib.sh copies there before vite runs), which the build
// copies into dist unchanged, so hashing public/ hashes the final files.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';

const ID = 'virtual:latentlab-integrity';
const RESOLVED = `\0${ID}`;

/** What the bundler may emit: code and the host's headers file; anything else would be data the table cannot cover. */
const CODE = /\.(html|m?js|css|wasm|map)$|^_headers$/;

/** Streamed, so the 98 MB language model is never held whole. */
async function sha256File(path) {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** {path relative to `dir`, with `/` → sha256 hex} of every file under `dir` (none if it is missing). */
export async function integrityTable(dir) {
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (err) {
    if (err.code === 'ENOENT') return {};
    throw err;
  }
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name)).sort();
  // A few at a time: thousands of open files at once would run into the descriptor limit.
  const hashes = new Array(files.length);
  let next = 0;
  const hashNext = async () => {
    while (next < files.length) {
      const at = next++;
      hashes[at] = await sha256File(files[at]);
    }
  };
  await Promise.all(Array.from({ length: 8 }, hashNext));
  return Object.fromEntries(files.map((file, i) => [relative(dir, file).split(sep).join('/'), hashes[i]]));
}

/**
 * One plugin object for the pages' build and the worker's (vite bundles the worker
 * separately, with `worker.plugins`), so the files are hashed once.
 */
export function integrity(publicDir) {
  let table = null;
  return {
    name: 'latentlab-integrity',
    // The dev server serves public/ live: an edited data file must not be refused as altered.
    configureServer(server) {
      server.watcher.add(publicDir);
      server.watcher.on('all', (_, file) => {
        if (!file.startsWith(publicDir)) return;
        table = null;
        const module = server.moduleGraph.getModuleById(RESOLVED);
        if (module) server.moduleGraph.invalidateModule(module);
      });
    },
    resolveId: (id) => (id === ID ? RESOLVED : null),
    async load(id) {
      if (id !== RESOLVED) return null;
      table ??= integrityTable(publicDir);
      return `export default ${JSON.stringify(await table)};\n`;
    },
    generateBundle(_, bundle) {
      const data = Object.keys(bundle).filter((name) => !CODE.test(name.split('/').pop()));
      if (data.length > 0) {
        this.error(`the bundler emitted data files that no sha256 covers: ${data.join(', ')}. `
          + 'Put files the site fetches in www/public instead (www/integrity-plugin.js).');
      }
    },
  };
}
