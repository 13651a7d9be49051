// Persistence for the search worker. Embeddings: one saved index per model (the package's
// saveIndex/loadIndex, IndexedDB database 'latentlab-indexes', named `search:<model key>`),
// ids = item names, metadata = {hash} of the pixels, so a reload reuses them instead of
// recomputing. A saved index the package refuses (damaged, cut, another model's) is a miss for
// every item: all are recomputed and saved again, never a wrong result. The pictures the user
// added (their original Blobs) live in this file's own database, so they come back after a
// reload. Where IndexedDB is unavailable or fails (private windows, quota), every function
// quietly does nothing: search still works, it just is not remembered.
import { EmbeddingIndex, saveIndex, loadIndex, listIndexes } from 'latentlab';

const DB_NAME = 'latentlab-search';
// Version 2 drops version 1's per-item 'embeddings' store (now one saved index per model).
const DB_VERSION = 2;
const IMAGES = 'images'; // keyPath name → {name, blob, added}
const INDEX_PREFIX = 'search:';

let dbPromise = null;

function openDb() {
  dbPromise ??= new Promise((resolve) => {
    if (!globalThis.indexedDB) {
      resolve(null);
      return;
    }
    let request;
    try {
      request = indexedDB.open(DB_NAME, DB_VERSION);
    } catch {
      resolve(null);
      return;
    }
    request.onupgradeneeded = () => {
      const db = request.result;
      if (db.objectStoreNames.contains('embeddings')) db.deleteObjectStore('embeddings');
      if (!db.objectStoreNames.contains(IMAGES)) db.createObjectStore(IMAGES, { keyPath: 'name' });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => resolve(null);
    request.onblocked = () => resolve(null);
  });
  return dbPromise;
}

/** Runs `work(store)` in one transaction; resolves with what `work` set as result, or `fallback` on failure. */
async function withStore(name, mode, work, fallback) {
  const db = await openDb();
  if (!db) return fallback;
  return new Promise((resolve) => {
    let result = fallback;
    let tx;
    try {
      tx = db.transaction(name, mode);
      const set = (value) => { result = value; };
      work(tx.objectStore(name), set);
    } catch {
      resolve(fallback);
      return;
    }
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => resolve(fallback);
    tx.onabort = () => resolve(fallback);
  });
}

/** The saved embeddings of the model now loaded: {model, index}, read once per model. */
let saved = null;

/** The model's saved index, or a new empty one where none is saved or the saved one is refused. */
async function savedIndex(model) {
  if (saved?.model === model) return saved.index;
  saved?.index.free();
  saved = null;
  let index;
  try {
    index = await loadIndex(INDEX_PREFIX + model, { model });
  } catch {
    index = new EmbeddingIndex({ model }); // nothing saved, no IndexedDB, or a record refused
  }
  saved = { model, index };
  return index;
}

/** The saved embeddings of `model` for `items` ([{name, hash}]): a Float32Array where the saved
 * item has the same pixels' hash, undefined elsewhere. */
export async function getEmbeddings(model, items) {
  const index = await savedIndex(model);
  return items.map(({ name, hash }) => {
    const item = index.get(name);
    return item && item.metadata?.hash === hash ? item.vector : undefined;
  });
}

/** Saves `entries` ([{name, hash, vector}]) into `model`'s index. */
export async function putEmbeddings(model, entries) {
  if (entries.length === 0) return;
  const index = await savedIndex(model);
  const data = new Float32Array(entries.length * entries[0].vector.length);
  entries.forEach(({ vector }, i) => data.set(vector, i * vector.length));
  index.upsert(entries.map((e) => e.name), data, entries.map((e) => ({ hash: e.hash })));
  try {
    await saveIndex(INDEX_PREFIX + model, index);
  } catch {
    // Quota exceeded or no IndexedDB: the page works on, it just does not remember.
  }
}

/** Deletes the saved embeddings of the items called one of `names`, for every model. */
export async function deleteEmbeddingsOf(names) {
  if (names.length === 0) return;
  let list;
  try {
    list = await listIndexes();
  } catch {
    return;
  }
  for (const { name } of list.filter((entry) => entry.name.startsWith(INDEX_PREFIX))) {
    const model = name.slice(INDEX_PREFIX.length);
    const current = saved?.model === model;
    let index;
    try {
      index = current ? saved.index : await loadIndex(name, { model });
    } catch {
      continue; // refused: it is replaced when that model is next used
    }
    try {
      if (index.remove(names.filter((n) => index.has(n))) > 0) await saveIndex(name, index);
    } catch {
      // As above: not remembered.
    } finally {
      if (!current) index.free();
    }
  }
}

/** Stores user images: [{name, blob}]. */
export function putImages(images) {
  return withStore(IMAGES, 'readwrite', (store) => {
    for (const { name, blob } of images) store.put({ name, blob, added: Date.now() });
  });
}

/** Deletes the stored user images called one of `names`. */
export function deleteImages(names) {
  return withStore(IMAGES, 'readwrite', (store) => {
    for (const name of names) store.delete(name);
  });
}

/** Every stored user image, oldest first: [{name, blob, added}]. A record that is not one (a
 * damaged store, another version's) is left out, as if it had not been stored. */
export function listImages() {
  return withStore(IMAGES, 'readonly', (store, set) => {
    const request = store.getAll();
    request.onsuccess = () => set(request.result
      .filter((r) => typeof r?.name === 'string' && r.blob instanceof Blob)
      .sort((a, b) => (Number(a.added) || 0) - (Number(b.added) || 0)));
  }, []);
}

/** Deletes every stored user image; resolves with their names. */
export async function clearImages() {
  const names = (await listImages()).map((image) => image.name);
  await withStore(IMAGES, 'readwrite', (store) => store.clear());
  await deleteEmbeddingsOf(names);
  return names;
}
