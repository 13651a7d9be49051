// Reads the fixtures' .npy files in tests, with the site's own reader (www/src/npy.js).
import { readFileSync } from 'node:fs';
import { parseNpy } from '../../www/src/npy.js';

export function readNpy(path) {
  const buf = readFileSync(path);
  return parseNpy(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length), path);
}

export function cosine(a, b) {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return ab / Math.sqrt(aa * bb);
}
