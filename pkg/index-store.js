// Saved indexes: an EmbeddingIndex's bytes (toBytes, latentlab's versioned format with the
// model name and a sha256 inside) kept under a name in the browser's IndexedDB, so an app
// reloads its gallery's index instead of embedding it again. Works in pages and workers.
// Unlike a cache, failures here are the caller's to know: quota, a private window without
// IndexedDB, a damaged record all reject with an Error saying which.
import { EmbeddingIndex } from './latentlab.js';

const DB_NAME = 'latentlab-indexes';
const STORE = 'indexes'; // keyPath name → {name, bytes, model, dim, size, storage, saved}

function checkName(name) {
  if (typeof name !== 'string' || name === '') throw new TypeError('the index name must be a non-empty string');
}

function openDb() {
  return new Promise((resolve, reject) => {
    if (!globalThis.indexedDB) {
      reject(new Error('saved indexes need IndexedDB (a browser page or worker); elsewhere, keep index.toBytes() in a file'));
      return;
    }
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'name' });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new Error(`cannot open IndexedDB: ${request.error?.message ?? 'unknown error'}`));
    request.onblocked = () => reject(new Error('IndexedDB is blocked by another tab holding an older version open'));
  });
}

/** Runs `work(store)` in one transaction and resolves with the value its last request gave. */
async function transact(mode, work, what) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      let result;
      const request = work(tx.objectStore(STORE));
      request.onsuccess = () => { result = request.result; };
      tx.oncomplete = () => resolve(result);
      const fail = () => reject(new Error(`${what} failed: ${tx.error?.message ?? request.error?.message ?? 'the transaction was aborted'}`));
      tx.onerror = fail;
      tx.onabort = fail;
    });
  } finally {
    db.close();
  }
}

/** Saves `index` under `name` (replacing what was saved there). */
export async function saveIndex(name, index) {
  checkName(name);
  if (!(index instanceof EmbeddingIndex)) throw new TypeError('saveIndex needs an EmbeddingIndex');
  const record = {
    name, bytes: index.toBytes(), model: index.model, dim: index.dim ?? null,
    size: index.size, storage: index.storage, saved: Date.now(),
  };
  await transact('readwrite', (store) => store.put(record), `saving index ${JSON.stringify(name)}`);
}

/** The index saved under `name`; `options.model`, when given, must be the model it was built with. */
export async function loadIndex(name, options) {
  checkName(name);
  const record = await transact('readonly', (store) => store.get(name), `loading index ${JSON.stringify(name)}`);
  if (record === undefined) throw new Error(`no index is saved under ${JSON.stringify(name)}`);
  if (!(record?.bytes instanceof Uint8Array)) throw new Error(`the record saved under ${JSON.stringify(name)} is not an index`);
  try {
    return EmbeddingIndex.fromBytes(record.bytes, options);
  } catch (e) {
    throw new Error(`index ${JSON.stringify(name)}: ${e.message}`);
  }
}

/** What is saved, without loading it: [{name, model, dim, size, storage, bytes, saved}], by name. */
export async function listIndexes() {
  const records = await transact('readonly', (store) => store.getAll(), 'listing saved indexes');
  return records
    .filter((r) => typeof r?.name === 'string' && r.bytes instanceof Uint8Array)
    .map(({ name, model, dim, size, storage, bytes, saved }) => ({ name, model, dim, size, storage, bytes: bytes.length, saved }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Deletes the index saved under `name`; resolves with whether there was one. */
export async function deleteIndex(name) {
  checkName(name);
  // One transaction: the count answers before the delete runs.
  const had = await transact('readwrite', (store) => {
    const count = store.count(name);
    store.delete(name);
    return count;
  }, `deleting index ${JSON.stringify(name)}`);
  return had > 0;
}
