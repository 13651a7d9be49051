// IndexedDB persistence for the search worker: embeddings keyed by (model, item name,
// content hash), so a reload reuses them instead of recomputing, and the pixels (as the
// original Blob) of images the user added, so they come back after a reload.
// Where IndexedDB is unavailable or fails (private windows, quota), every function
// quietly does nothing: search still works, it just is not remembered.

const DB_NAME = 'latentlab-search';
const DB_VERSION = 1;
const EMBEDDINGS = 'embeddings'; // key [model, name, hash] → Float32Array
const IMAGES = 'images'; // keyPath name → {name, blob, added}

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
      if (!db.objectStoreNames.contains(EMBEDDINGS)) db.createObjectStore(EMBEDDINGS);
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

/** The stored embeddings for `keys` ([model, name, hash] each), as an array with undefined for
 * misses. What comes back is whatever the store held: the caller checks it is a vector. */
export function getEmbeddings(keys) {
  return withStore(EMBEDDINGS, 'readonly', (store, set) => {
    const out = new Array(keys.length);
    set(out);
    keys.forEach((key, i) => {
      const request = store.get(key);
      request.onsuccess = () => { out[i] = request.result; };
    });
  }, new Array(keys.length));
}

/** Stores `entries` ([key, Float32Array] each). */
export function putEmbeddings(entries) {
  return withStore(EMBEDDINGS, 'readwrite', (store) => {
    for (const [key, vector] of entries) store.put(vector, key);
  });
}

/** Deletes every stored embedding of the items called one of `names`, for any model. */
export function deleteEmbeddingsOf(names) {
  const wanted = new Set(names);
  return withStore(EMBEDDINGS, 'readwrite', (store) => {
    const cursor = store.openKeyCursor();
    cursor.onsuccess = () => {
      const c = cursor.result;
      if (!c) return;
      if (wanted.has(c.key[1])) store.delete(c.primaryKey);
      c.continue();
    };
  });
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
