// Saved indexes (pkg/index-store.js) in headless Chromium: an EmbeddingIndex saved under a
// name comes back after a reload with the same answers; another model's index, a missing name
// and a damaged record are refused by name; under Node, where there is no IndexedDB, the call
// says so. The package is imported straight into a page on its own origin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EmbeddingIndex, saveIndex, loadIndex } from 'latentlab';
import { servedPackage, openPackagePage } from './browser.mjs';

const served = servedPackage();

const packagePage = (context) => openPackagePage(served, { context });

test('an index saved in IndexedDB comes back after a reload with the same answers', async () => {
  const context = await served.browser.newContext();
  try {
    const first = await packagePage(context);
    const saved = await first.page.evaluate(async () => {
      const { EmbeddingIndex, saveIndex, listIndexes } = window.ll;
      const index = new EmbeddingIndex({ model: 'toy-model', storage: 'int8' });
      let seed = 7;
      const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 - 0.5; };
      const ids = Array.from({ length: 300 }, (_, i) => `item-${i}`);
      index.add(ids, Float32Array.from({ length: 300 * 16 }, random), ids.map((id, i) => ({ even: i % 2 === 0 })));
      const query = Float32Array.from({ length: 16 }, random);
      window.query = Array.from(query);
      await saveIndex('gallery', index);
      const answer = index.search(query, { k: 5, filter: (id, m) => m.even });
      return { answer, list: await listIndexes() };
    });
    assert.equal(saved.list.length, 1);
    const [info] = saved.list;
    assert.deepEqual({ ...info, saved: typeof info.saved, bytes: info.bytes > 300 * 16 },
      { name: 'gallery', model: 'toy-model', dim: 16, size: 300, storage: 'int8', bytes: true, saved: 'number' });
    const query = await first.page.evaluate(() => window.query);
    await first.page.close();

    const second = await packagePage(context);
    const loaded = await second.page.evaluate(async (q) => {
      const { loadIndex } = window.ll;
      const index = await loadIndex('gallery', { model: 'toy-model' });
      return { answer: index.search(new Float32Array(q), { k: 5, filter: (id, m) => m.even }), size: index.size, storage: index.storage };
    }, query);
    assert.deepEqual(loaded.answer, saved.answer);
    assert.equal(loaded.size, 300);
    assert.equal(loaded.storage, 'int8');

    const refusals = await second.page.evaluate(async () => {
      const { loadIndex, deleteIndex, saveIndex } = window.ll;
      const message = (promise) => promise.then(() => 'no error', (e) => e.message);
      // A record damaged in storage: one byte of the saved index flipped.
      await new Promise((resolve, reject) => {
        const open = indexedDB.open('latentlab-indexes');
        open.onsuccess = () => {
          const tx = open.result.transaction('indexes', 'readwrite');
          const store = tx.objectStore('indexes');
          const get = store.get('gallery');
          get.onsuccess = () => {
            const record = get.result;
            const bytes = record.bytes.slice();
            bytes[100] ^= 1;
            store.put({ ...record, name: 'damaged', bytes });
          };
          tx.oncomplete = () => { open.result.close(); resolve(); };
          tx.onerror = () => reject(tx.error);
        };
      });
      return {
        otherModel: await message(loadIndex('gallery', { model: 'clip' })),
        missing: await message(loadIndex('nothing-here')),
        damaged: await message(loadIndex('damaged')),
        badName: await message(saveIndex('', null)),
        notIndex: await message(saveIndex('x', { toBytes: () => new Uint8Array() })),
        deleted: await deleteIndex('gallery'),
        deletedAgain: await deleteIndex('gallery'),
        afterDelete: await message(loadIndex('gallery')),
      };
    });
    assert.deepEqual(refusals, {
      otherModel: 'index "gallery": this index holds embeddings of "toy-model", not of "clip"',
      missing: 'no index is saved under "nothing-here"',
      damaged: 'index "damaged": not an index file: the checksum does not match: the bytes are damaged or cut short',
      badName: 'the index name must be a non-empty string',
      notIndex: 'saveIndex needs an EmbeddingIndex',
      deleted: true,
      deletedAgain: false,
      afterDelete: 'no index is saved under "gallery"',
    });
    assert.deepEqual(second.errors, []);
  } finally {
    await context.close();
  }
});

test('under Node, where there is no IndexedDB, saving says what to do instead', async () => {
  const index = new EmbeddingIndex({ model: 'm' });
  await assert.rejects(saveIndex('x', index), /saved indexes need IndexedDB \(a browser page or worker\); elsewhere, keep index.toBytes\(\) in a file/);
  await assert.rejects(loadIndex('x'), /saved indexes need IndexedDB/);
  index.free();
});
