// Pictures as files under Node: paths, file: URLs, Buffers and raw bytes go through the CLI's own PNG/JPEG
// decoder compiled into the wasm module (Node has none). Checked against an independent PNG
// decoder (tests/js/png.mjs) pixel for pixel, embeddings from a path equal those from the pixels,
// and files that are not pictures, or that claim a huge size, are refused by name before any
// pixel is allocated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Encoder, parseManifest, toImageInput, decodeImage } from 'latentlab/encoders';
import { decodePng } from './png.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const gallery = `${root}www/public/gallery/`;

test('PNG paths, Buffers and bytes decode to the same pixels as an independent decoder', async () => {
  for (const name of ['chelsea.png', 'coffee.png', 'astronaut.png']) {
    const want = decodePng(`${gallery}${name}`);
    const bytes = readFileSync(`${gallery}${name}`);
    for (const input of [`${gallery}${name}`, pathToFileURL(`${gallery}${name}`), pathToFileURL(`${gallery}${name}`).href, bytes, new Uint8Array(bytes), bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)]) {
      const got = await toImageInput(input);
      assert.equal(got.width, want.width);
      assert.equal(got.height, want.height);
      assert.ok(Buffer.from(got.data).equals(Buffer.from(want.data)), `${name}: pixels differ`);
    }
  }
});

test('Encoder.embedImages takes paths and Buffers (PNG and JPEG) and gives the pixels\' embeddings', async () => {
  const manifest = parseManifest(readFileSync(`${root}models/manifest.json`, 'utf8'));
  const entry = manifest.models.find((m) => m.name === 'effl0-minilm-bridge');
  const encoder = await Encoder.load(entry, { cache: false, fetch: async (url) => new Response(readFileSync(`${root}models/${url}`)) });
  const fromPaths = await encoder.embedImages([`${gallery}chelsea.png`, `${gallery}rocket.jpg`]);
  const fromBuffers = await encoder.embedImages([readFileSync(`${gallery}chelsea.png`), readFileSync(`${gallery}rocket.jpg`)]);
  const fromPixels = encoder.embedImage([decodePng(`${gallery}chelsea.png`)]);
  assert.deepEqual(fromPaths.data, fromBuffers.data);
  assert.deepEqual(fromPaths.data.subarray(0, fromPaths.cols), fromPixels.data);
  const jpeg = await toImageInput(`${gallery}rocket.jpg`);
  assert.ok(jpeg.width > 100 && jpeg.height > 100 && jpeg.data.length === jpeg.width * jpeg.height * 4);
  encoder.free();
});

test('files that are not pictures, missing files and forged sizes are refused by name', async () => {
  await assert.rejects(toImageInput(new TextEncoder().encode('not a picture'), { label: 'upload 3' }),
    { message: 'upload 3 cannot be decoded as a picture: 13 bytes that are neither PNG nor JPEG' });
  await assert.rejects(toImageInput(`${gallery}no-such.png`), { message: `image: cannot read ${gallery}no-such.png (ENOENT)` });
  await assert.rejects(toImageInput(`${root}Cargo.toml`), /image \(.*Cargo\.toml\) cannot be decoded as a picture: \d+ bytes that are neither PNG nor JPEG/);
  // A PNG whose header claims 20,000 × 20,000 pixels (its own pixels follow).
  const png = readFileSync(`${gallery}chelsea.png`);
  png.writeUInt32BE(20_000, 16);
  png.writeUInt32BE(20_000, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29); // the IHDR chunk's CRC, so the header is valid
  assert.throws(() => decodeImage(png, 'forged.png'), /forged\.png cannot be decoded as a picture: 20000×20000 is more than 67108864 pixels/);
  // A cut file: the header is right, the pixels are missing.
  const cut = readFileSync(`${gallery}coffee.png`).subarray(0, 2000);
  assert.throws(() => decodeImage(cut, 'cut.png'), /cut\.png cannot be decoded as a picture: /);
});
