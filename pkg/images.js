// Every kind of picture a page has, turned into the straight RGBA pixels the image encoders
// take ({width, height, data}). Decoding is the browser's own (createImageBitmap), in pages
// and workers alike; colour profiles are ignored, as the CLI's decoder ignores them, so both
// see the same pixels.

const isRgba = (x) => x !== null && typeof x === 'object'
  && Number.isInteger(x.width) && Number.isInteger(x.height)
  && (x.data instanceof Uint8Array || x.data instanceof Uint8ClampedArray);

/** Whether `x` is already an RGBA image ({width, height, data}, as ImageData). */
export function isRgbaImage(x) {
  return isRgba(x);
}

const has = (name) => typeof globalThis[name] === 'function';
const isBlob = (x) => has('Blob') && x instanceof globalThis.Blob;
/** Things `drawImage` takes that a worker message cannot carry (elements) or that can be drawn at once. */
const isDrawable = (x) => ['ImageBitmap', 'HTMLImageElement', 'HTMLCanvasElement', 'OffscreenCanvas',
  'SVGImageElement', 'HTMLVideoElement', 'VideoFrame'].some((name) => has(name) && x instanceof globalThis[name]);

function describe(x) {
  if (x === null) return 'null';
  if (typeof x !== 'object') return typeof x;
  return x.constructor?.name ?? 'an object';
}

/** A 2-D canvas of `width` × `height` in pages and workers. */
function canvas(width, height) {
  if (has('OffscreenCanvas')) return new OffscreenCanvas(width, height);
  const c = globalThis.document.createElement('canvas');
  c.width = width;
  c.height = height;
  return c;
}

/** The pixels of something `drawImage` takes, scaled down (never up) to `maxSide`. */
function pixelsOf(source, width, height, maxSide, label) {
  if (!(width > 0 && height > 0)) throw new Error(`${label}: the picture has no pixels (${width} × ${height}); is it loaded?`);
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const ctx = canvas(w, h).getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, w, h);
  const { data } = ctx.getImageData(0, 0, w, h);
  return { width: w, height: h, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Decodes a Blob (a File, a fetched body) with the browser's decoder. */
export async function decodeBlob(blob, { maxSide = Infinity, label = 'image' } = {}) {
  if (!has('createImageBitmap')) throw new Error(`${label}: decoding a Blob needs createImageBitmap (a browser or a browser worker)`);
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', imageOrientation: 'from-image' });
  } catch {
    const kind = blob.type ? ` (${blob.type})` : '';
    throw new Error(`${label}: ${blob.size} bytes${kind} that this browser cannot decode as an image`);
  }
  try {
    return pixelsOf(bitmap, bitmap.width, bitmap.height, maxSide, label);
  } finally {
    bitmap.close();
  }
}

/**
 * `input` as RGBA pixels. Takes RGBA objects and ImageData as they are; ImageBitmap, <img>,
 * <canvas>, OffscreenCanvas, <video> and VideoFrame drawn; Blob and File decoded; a URL
 * (string or URL) fetched, then decoded. `maxSide` scales larger pictures down first (default:
 * none; the encoders resize to their own input size anyway). Errors name `label`.
 */
export async function toImageInput(input, { maxSide = Infinity, label = 'image', fetch: doFetch = globalThis.fetch, signal } = {}) {
  if (isRgba(input)) return input;
  if (isBlob(input)) return decodeBlob(input, { maxSide, label });
  if (has('HTMLImageElement') && input instanceof globalThis.HTMLImageElement) {
    try {
      await input.decode();
    } catch {
      throw new Error(`${label}: the <img> (${input.currentSrc || input.src || 'no src'}) could not be loaded or decoded`);
    }
    return pixelsOf(input, input.naturalWidth, input.naturalHeight, maxSide, label);
  }
  if (isDrawable(input)) {
    const width = input.videoWidth ?? input.displayWidth ?? input.width;
    const height = input.videoHeight ?? input.displayHeight ?? input.height;
    return pixelsOf(input, width, height, maxSide, label);
  }
  if (typeof input === 'string' || input instanceof URL) {
    if (typeof process !== 'undefined' && process.versions?.node && !/^(https?|data|blob):/i.test(String(input))) {
      throw new Error(`${label}: ${input} looks like a file path; in Node, read the file and pass its pixels ({width, height, data}) — Node has no image decoder of its own`);
    }
    if (!doFetch) throw new Error(`${label}: fetching ${input} needs fetch`);
    let response;
    try {
      response = await doFetch(String(input), { signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new Error(`${label}: ${input} could not be fetched (${err.message})`);
    }
    if (!response.ok) throw new Error(`${label}: ${input} could not be fetched (HTTP ${response.status})`);
    return decodeBlob(await response.blob(), { maxSide, label: `${label} (${input})` });
  }
  throw new TypeError(`${label}: expected RGBA pixels {width, height, data}, ImageData, ImageBitmap, an <img> or <canvas>, a Blob or File, or a URL; got ${describe(input)}`);
}
